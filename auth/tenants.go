package auth

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
)

// publicKeyPrefix starts every public site key.
const publicKeyPrefix = "pk_"

// CreateOrg creates an organization. When owner is not uuid.Nil, that user
// becomes its owner.
func (s *Store) CreateOrg(ctx context.Context, name string, owner uuid.UUID) (Org, error) {
	name, err := checkName("org name", name, true)
	if err != nil {
		return Org{}, err
	}
	if owner != uuid.Nil {
		if _, err := s.User(owner); err != nil {
			return Org{}, fmt.Errorf("auth: create org: owner: %w", err)
		}
	}
	o := Org{ID: uuid.New(), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if err := write(ctx, s, orgsTable(), versioned[Org]{row: o, version: createVersion(time.Now())}); err != nil {
		return Org{}, err
	}
	if owner != uuid.Nil {
		if _, err := s.AddMember(ctx, o.ID, owner, RoleOwner); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Org returns a live org.
func (s *Store) Org(id uuid.UUID) (Org, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := liveRow(s.t.orgs, id)
	if !ok {
		return Org{}, notFound("org", id)
	}
	return o, nil
}

// Orgs lists every live org, by name (for operators).
func (s *Store) Orgs() []Org {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Org
	for _, v := range s.t.orgs {
		if !v.deleted {
			out = append(out, v.row)
		}
	}
	sort.Slice(out, func(i, j int) bool { // by name; orgs of the same name by id
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out
}

// updateOrg writes a new version of a live org changed by f.
func (s *Store) updateOrg(ctx context.Context, id uuid.UUID, f func(*Org)) (Org, error) {
	o, err := s.Org(id)
	if err != nil {
		return Org{}, err
	}
	f(&o)
	return o, write(ctx, s, orgsTable(), versioned[Org]{row: o, version: s.updateVersion()})
}

// RenameOrg changes an org's name.
func (s *Store) RenameOrg(ctx context.Context, id uuid.UUID, name string) (Org, error) {
	name, err := checkName("org name", name, true)
	if err != nil {
		return Org{}, err
	}
	return s.updateOrg(ctx, id, func(o *Org) { o.Name = name })
}

// SetQuota sets an org's quota; zero fields fall back to Config.DefaultQuota.
func (s *Store) SetQuota(ctx context.Context, id uuid.UUID, q Quota) (Org, error) {
	return s.updateOrg(ctx, id, func(o *Org) { o.Quota = q })
}

// DeleteOrg deletes an org. Its sites, members, keys, share links and
// invites stop working at once (they belong to a deleted org) and are
// tombstoned as well.
func (s *Store) DeleteOrg(ctx context.Context, id uuid.UUID) error {
	o, err := s.Org(id)
	if err != nil {
		return err
	}
	if err := write(ctx, s, orgsTable(), versioned[Org]{row: o, version: s.updateVersion(), deleted: true}); err != nil {
		return err
	}
	for _, site := range s.Sites(id) {
		if err := s.deleteSite(ctx, site); err != nil {
			return err
		}
	}
	s.mu.RLock()
	members := slices.Clone(s.idx.membersByOrg[id])
	var keys []APIKey
	for _, v := range s.t.keys {
		if !v.deleted && v.row.OrgID == id {
			keys = append(keys, v.row)
		}
	}
	s.mu.RUnlock()
	for _, m := range members {
		if err := write(ctx, s, membersTable(), versioned[Member]{row: m, version: s.updateVersion(), deleted: true}); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := write(ctx, s, keysTable(), versioned[APIKey]{row: k, version: s.updateVersion(), deleted: true}); err != nil {
			return err
		}
	}
	return nil
}

// SiteInput describes a new site.
type SiteInput struct {
	// Domain is the site's domain, unique among live sites.
	Domain string `json:"domain"`
	// AllowedOrigins may open the ingest WebSocket; empty means
	// https://<domain> only.
	AllowedOrigins []string `json:"allowed_origins"`
	// TimeZone is an IANA name; empty means UTC.
	TimeZone string `json:"time_zone"`
	// HonorDNT drops events of browsers that send DNT: 1.
	HonorDNT bool `json:"honor_dnt"`
	// RetentionDays is how many days of data the site keeps; 0 keeps it
	// forever. At most MaxRetentionDays.
	RetentionDays int64 `json:"retention_days"`
}

// CreateSite creates a site in org. Two concurrent creates of one domain
// (on any nodes) yield one site; the others fail with ErrExists.
func (s *Store) CreateSite(ctx context.Context, org uuid.UUID, in SiteInput) (Site, error) {
	if _, err := s.Org(org); err != nil {
		return Site{}, fmt.Errorf("auth: create site: %w", err)
	}
	domain, err := NormalizeDomain(in.Domain)
	if err != nil {
		return Site{}, err
	}
	origins := in.AllowedOrigins
	if len(origins) == 0 {
		origins = []string{"https://" + domain}
	}
	if origins, err = normalizeOrigins(origins); err != nil {
		return Site{}, err
	}
	tz, err := s.siteTimeZone(ctx, in.TimeZone)
	if err != nil {
		return Site{}, err
	}
	retention, err := checkRetention(in.RetentionDays)
	if err != nil {
		return Site{}, err
	}
	return claim(ctx, s, sitesTable(), "site", "domain", domain,
		func(site Site) uint32 { return site.generation },
		func(id uuid.UUID, gen uint32) Site {
			return Site{
				ID: id, OrgID: org, Domain: domain, generation: gen,
				PublicKey: publicKeyPrefix + randomString(16), AllowedOrigins: origins, TimeZone: tz, HonorDNT: in.HonorDNT,
				RetentionDays: retention, IdentitySecret: randomString(32), CreatedAt: time.Now().UTC().Truncate(time.Second),
			}
		})
}

// Site returns a live site of a live org.
func (s *Store) Site(id uuid.UUID) (Site, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	site, ok := liveRow(s.t.sites, id)
	if !ok {
		return Site{}, notFound("site", id)
	}
	if _, ok := liveRow(s.t.orgs, site.OrgID); !ok {
		return Site{}, notFound("site", id)
	}
	return site, nil
}

// SiteByPublicKey returns the live site with public key pk.
func (s *Store) SiteByPublicKey(pk string) (Site, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	site, ok := s.idx.sitesByKey[pk]
	if !ok {
		return Site{}, notFound("site key", truncate(pk, 40))
	}
	return site, nil
}

// SiteByDomain returns the live site of a domain (normalized first).
func (s *Store) SiteByDomain(domain string) (Site, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return Site{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	site, ok := s.idx.sitesByDomain[d]
	if !ok {
		return Site{}, notFound("site domain", d)
	}
	return site, nil
}

// Sites lists org's live sites by domain.
func (s *Store) Sites(org uuid.UUID) []Site {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.idx.sitesByOrg[org])
}

// siteTimeZone validates a site's time zone (empty means UTC) by Go's
// rules and then by the ClickHouse server's, which computes the reports in
// it and knows fewer zones than Go (right/UTC).
func (s *Store) siteTimeZone(ctx context.Context, tz string) (string, error) {
	tz, err := checkTimeZone(tz)
	if err != nil {
		return "", err
	}
	known, err := s.db.KnowsTimeZone(ctx, tz)
	if err != nil {
		return "", fmt.Errorf("auth: site time zone: %w", err)
	}
	if !known {
		return "", invalid("time zone %q is not known to ClickHouse, which computes the reports: use the zone's plain IANA name (for example UTC or Europe/Berlin)", tz)
	}
	return tz, nil
}

// SiteUpdate changes the fields that are not nil.
type SiteUpdate struct {
	AllowedOrigins *[]string `json:"allowed_origins"`
	TimeZone       *string   `json:"time_zone"`
	HonorDNT       *bool     `json:"honor_dnt"`
	RetentionDays  *int64    `json:"retention_days"`
}

// UpdateSite changes a site's allowed origins, time zone, Do Not Track
// setting or retention.
func (s *Store) UpdateSite(ctx context.Context, id uuid.UUID, up SiteUpdate) (Site, error) {
	site, err := s.Site(id)
	if err != nil {
		return Site{}, err
	}
	if up.AllowedOrigins != nil {
		if site.AllowedOrigins, err = normalizeOrigins(*up.AllowedOrigins); err != nil {
			return Site{}, err
		}
	}
	if up.TimeZone != nil {
		if site.TimeZone, err = s.siteTimeZone(ctx, *up.TimeZone); err != nil {
			return Site{}, err
		}
	}
	if up.HonorDNT != nil {
		site.HonorDNT = *up.HonorDNT
	}
	if up.RetentionDays != nil {
		if site.RetentionDays, err = checkRetention(*up.RetentionDays); err != nil {
			return Site{}, err
		}
	}
	return site, write(ctx, s, sitesTable(), versioned[Site]{row: site, version: s.updateVersion()})
}

// RotateIdentitySecret gives a site a new identity secret; identity tokens
// signed with the old one stop verifying.
func (s *Store) RotateIdentitySecret(ctx context.Context, id uuid.UUID) (Site, error) {
	site, err := s.Site(id)
	if err != nil {
		return Site{}, err
	}
	site.IdentitySecret = randomString(32)
	return site, write(ctx, s, sitesTable(), versioned[Site]{row: site, version: s.updateVersion()})
}

// DeleteSite deletes a site and revokes its share links. Its domain can be
// created again (as a new site with a new id).
func (s *Store) DeleteSite(ctx context.Context, id uuid.UUID) error {
	site, err := s.Site(id)
	if err != nil {
		return err
	}
	return s.deleteSite(ctx, site)
}

func (s *Store) deleteSite(ctx context.Context, site Site) error {
	if err := write(ctx, s, sitesTable(), versioned[Site]{row: site, version: s.updateVersion(), deleted: true}); err != nil {
		return err
	}
	for _, l := range s.ShareLinks(site.ID) {
		if err := s.RevokeShareLink(ctx, l.ID); err != nil {
			return err
		}
	}
	return nil
}

// checkRetention validates a site's retention in days.
func checkRetention(days int64) (uint32, error) {
	if days < 0 || days > MaxRetentionDays {
		return 0, invalid("retention_days must be a whole number of days from 1 to %d, or 0 to keep data forever; got %d", MaxRetentionDays, days)
	}
	return uint32(days), nil
}

// DeletedSites lists the sites that were deleted, or whose org was deleted,
// so that their events can be deleted too.
func (s *Store) DeletedSites() []Site {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Site
	for _, v := range s.t.sites {
		// A site whose org is not known is not taken for deleted.
		if o, ok := s.t.orgs[v.row.OrgID]; v.deleted || ok && o.deleted {
			out = append(out, v.row)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out
}

// AddMember gives user the role in org, adding the membership or changing
// its role. Taking the owner role away from the last owner fails with ErrLastOwner.
func (s *Store) AddMember(ctx context.Context, org, user uuid.UUID, role Role) (Member, error) {
	if !role.Valid() {
		return Member{}, invalid("role %q is not owner, admin or viewer", role)
	}
	if _, err := s.Org(org); err != nil {
		return Member{}, err
	}
	if _, err := s.User(user); err != nil {
		return Member{}, err
	}
	m := Member{OrgID: org, UserID: user, Role: role, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if old, ok := s.membership(org, user); ok {
		m.CreatedAt = old.CreatedAt
		if old.Role == RoleOwner && role != RoleOwner && s.owners(org) <= 1 {
			return Member{}, fmt.Errorf("auth: change role: %w", ErrLastOwner)
		}
	}
	return m, write(ctx, s, membersTable(), versioned[Member]{row: m, version: s.updateVersion()})
}

// RemoveMember removes user from org. Removing the last owner fails with ErrLastOwner.
func (s *Store) RemoveMember(ctx context.Context, org, user uuid.UUID) error {
	m, ok := s.membership(org, user)
	if !ok {
		return notFound("member", user)
	}
	if m.Role == RoleOwner && s.owners(org) <= 1 {
		return fmt.Errorf("auth: remove member: %w", ErrLastOwner)
	}
	return write(ctx, s, membersTable(), versioned[Member]{row: m, version: s.updateVersion(), deleted: true})
}

// Members lists org's members.
func (s *Store) Members(org uuid.UUID) []Member {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.idx.membersByOrg[org])
}

// Memberships lists the orgs user belongs to.
func (s *Store) Memberships(user uuid.UUID) []Member {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.idx.membersByUser[user])
}

// membership returns user's live membership of org.
func (s *Store) membership(org, user uuid.UUID) (Member, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.idx.membersByUser[user] {
		if m.OrgID == org {
			return m, true
		}
	}
	return Member{}, false
}

func (s *Store) owners(org uuid.UUID) int {
	n := 0
	for _, m := range s.Members(org) {
		if m.Role == RoleOwner {
			n++
		}
	}
	return n
}
