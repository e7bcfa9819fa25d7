package auth

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
)

// apiKeyPrefix starts every secret API key; apiKeyVisible is how many
// characters of a secret (prefix included) are stored and shown.
const (
	apiKeyPrefix  = "sk_"
	apiKeyVisible = len(apiKeyPrefix) + 8
)

// CreateAPIKey creates a secret API key for org and returns it with the
// secret, which is shown this once: only its SHA-256 is stored.
func (s *Store) CreateAPIKey(ctx context.Context, org uuid.UUID, name string, scopes []Scope, by uuid.UUID) (APIKey, string, error) {
	name, err := checkName("key name", name, false)
	if err != nil {
		return APIKey{}, "", err
	}
	if len(scopes) == 0 {
		return APIKey{}, "", invalid("an API key needs at least one scope")
	}
	var sc []Scope
	for _, sco := range scopes {
		if !sco.Valid() {
			return APIKey{}, "", invalid("scope %q is not ingest, read or admin", sco)
		}
		if !slices.Contains(sc, sco) {
			sc = append(sc, sco)
		}
	}
	if _, err := s.Org(org); err != nil {
		return APIKey{}, "", err
	}
	secret := apiKeyPrefix + randomString(32)
	k := APIKey{ID: uuid.New(), OrgID: org, Name: name, Prefix: secret[:apiKeyVisible], Scopes: sc,
		CreatedBy: by, CreatedAt: time.Now().UTC().Truncate(time.Second), secretHash: hashSecret(secret)}
	return k, secret, write(ctx, s, keysTable(), versioned[APIKey]{row: k, version: createVersion(time.Now())})
}

// APIKeys lists org's live keys, newest first.
func (s *Store) APIKeys(org uuid.UUID) []APIKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []APIKey
	for _, k := range s.idx.keysByHash {
		if k.OrgID == org {
			k.LastUsedAt = s.lastUsed[k.ID]
			out = append(out, k)
		}
	}
	// Newest first; keys made in the same second (created_at is stored in
	// seconds) by id, so the list reads the same on every node and reload.
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out
}

// APIKey returns a live key by id.
func (s *Store) APIKey(id uuid.UUID) (APIKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := liveRow(s.t.keys, id)
	if !ok {
		return APIKey{}, notFound("API key", id)
	}
	k.LastUsedAt = s.lastUsed[k.ID]
	return k, nil
}

// RevokeAPIKey revokes a key: at once on this node, on every node within
// Config.RefreshInterval.
func (s *Store) RevokeAPIKey(ctx context.Context, id uuid.UUID) error {
	k, err := s.APIKey(id)
	if err != nil {
		return err
	}
	return write(ctx, s, keysTable(), versioned[APIKey]{row: k, version: s.updateVersion(), deleted: true})
}

// AuthenticateAPIKey returns the live key whose secret this is and records
// its use.
func (s *Store) AuthenticateAPIKey(secret string) (APIKey, error) {
	if !isAPIKeySecret(secret) || len(secret) > MaxTokenLength {
		return APIKey{}, fmt.Errorf("%w: not an API key", ErrUnauthorized)
	}
	h := hashSecret(secret)
	now := time.Now().UTC()
	s.mu.RLock()
	k, ok := s.idx.keysByHash[h]
	last := s.lastUsed[k.ID]
	s.mu.RUnlock()
	if !ok {
		return APIKey{}, fmt.Errorf("%w: unknown or revoked API key", ErrUnauthorized)
	}
	if now.Sub(last) >= lastUsedResolution {
		s.mu.Lock()
		if now.After(s.lastUsed[k.ID]) {
			s.lastUsed[k.ID] = now
			s.lastUsedDirty[k.ID] = now
		}
		s.mu.Unlock()
		last = now
	}
	k.LastUsedAt = last
	return k, nil
}

// flushLastUsed writes the key uses recorded since the last flush.
func (s *Store) flushLastUsed(ctx context.Context) error {
	s.mu.Lock()
	dirty := s.lastUsedDirty
	s.lastUsedDirty = map[uuid.UUID]time.Time{}
	s.mu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	err := func() error {
		ctx, cancel := context.WithTimeout(ctx, queryTimeout)
		defer cancel()
		batch, err := s.db.PrepareBatch(ctx, "INSERT INTO auth_api_key_usage (key_id, last_used_at)")
		if err != nil {
			return err
		}
		for id, t := range dirty {
			if err := batch.Append(id, t); err != nil {
				batch.Abort()
				return err
			}
		}
		return batch.Send()
	}()
	if err != nil {
		s.mu.Lock()
		for id, t := range dirty {
			if t.After(s.lastUsedDirty[id]) {
				s.lastUsedDirty[id] = t
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("auth: write API key last use: %w", err)
	}
	return nil
}

// loadLastUsed reads the last use of every key.
func (s *Store) loadLastUsed(ctx context.Context) (map[uuid.UUID]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := s.db.Query(ctx, "SELECT key_id, max(last_used_at) FROM auth_api_key_usage GROUP BY key_id")
	if err != nil {
		return nil, fmt.Errorf("auth: read API key last use: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID]time.Time{}
	for rows.Next() {
		var id uuid.UUID
		var t time.Time
		if err := rows.Scan(&id, &t); err != nil {
			return nil, fmt.Errorf("auth: read API key last use: %w", err)
		}
		out[id] = t.UTC()
	}
	return out, rows.Err()
}

// CreateShareLink creates a read-only link to one site's dashboard that
// expires after lifetime (DefaultShareLinkLifetime when 0, at most
// MaxShareLinkLifetime) and returns it with its token.
func (s *Store) CreateShareLink(ctx context.Context, site uuid.UUID, name string, lifetime time.Duration, by uuid.UUID) (ShareLink, string, error) {
	if lifetime == 0 {
		lifetime = DefaultShareLinkLifetime
	}
	if lifetime < 0 || lifetime > MaxShareLinkLifetime {
		return ShareLink{}, "", invalid("share link lifetime must be between 0 and %s", MaxShareLinkLifetime)
	}
	name, err := checkName("share link name", name, false)
	if err != nil {
		return ShareLink{}, "", err
	}
	st, err := s.Site(site)
	if err != nil {
		return ShareLink{}, "", err
	}
	now := time.Now()
	claims := ShareClaims{s.tok.registered(AudienceShare, st.ID.String(), now, lifetime)}
	id := uuid.New()
	claims.ID = id.String()
	l := ShareLink{ID: id, OrgID: st.OrgID, SiteID: st.ID, Name: name, CreatedBy: by,
		ExpiresAt: claims.ExpiresAt.Time.UTC(), CreatedAt: now.UTC().Truncate(time.Second)}
	tok, err := s.tok.sign(claims)
	if err != nil {
		return ShareLink{}, "", err
	}
	return l, tok, write(ctx, s, sharesTable(), versioned[ShareLink]{row: l, version: createVersion(now)})
}

// ShareLinks lists a site's live, unexpired share links.
func (s *Store) ShareLinks(site uuid.UUID) []ShareLink {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []ShareLink
	for _, v := range s.t.shares {
		if !v.deleted && v.row.SiteID == site && now.Before(v.row.ExpiresAt) {
			out = append(out, v.row)
		}
	}
	// Newest first; keys made in the same second (created_at is stored in
	// seconds) by id, so the list reads the same on every node and reload.
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out
}

// ShareLink returns a live share link.
func (s *Store) ShareLink(id uuid.UUID) (ShareLink, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := liveRow(s.t.shares, id)
	if !ok {
		return ShareLink{}, notFound("share link", id)
	}
	return l, nil
}

// RevokeShareLink revokes a share link: at once on this node, on every node
// within Config.RefreshInterval.
func (s *Store) RevokeShareLink(ctx context.Context, id uuid.UUID) error {
	l, err := s.ShareLink(id)
	if err != nil {
		return err
	}
	return write(ctx, s, sharesTable(), versioned[ShareLink]{row: l, version: s.updateVersion(), deleted: true})
}

// VerifyShareLink verifies a share link token and returns its link. The link
// must be known to this node (created here or loaded by a refresh), not
// revoked, and its site must be live.
func (s *Store) VerifyShareLink(raw string) (ShareLink, error) {
	var c ShareClaims
	if err := s.tok.parse(raw, AudienceShare, &c); err != nil {
		return ShareLink{}, err
	}
	id, err := uuid.Parse(c.ID)
	if err != nil {
		return ShareLink{}, fmt.Errorf("%w: share link without id", ErrUnauthorized)
	}
	l, err := s.ShareLink(id)
	if err != nil || l.SiteID.String() != c.Subject {
		return ShareLink{}, fmt.Errorf("%w: unknown or revoked share link", ErrUnauthorized)
	}
	if _, err := s.Site(l.SiteID); err != nil {
		return ShareLink{}, fmt.Errorf("%w: share link of a deleted site", ErrUnauthorized)
	}
	return l, nil
}

// IssueResumeToken issues an ingest resume token for an ingest session of site.
func (s *Store) IssueResumeToken(site uuid.UUID, session string) (string, error) {
	claims := ResumeClaims{Session: session,
		RegisteredClaims: s.tok.registered(AudienceResume, site.String(), time.Now(), s.cfg.ResumeLifetime)}
	return s.tok.sign(claims)
}

// VerifyResumeToken verifies a resume token for site and returns the ingest
// session it resumes.
func (s *Store) VerifyResumeToken(raw string, site uuid.UUID) (string, error) {
	var c ResumeClaims
	if err := s.tok.parse(raw, AudienceResume, &c); err != nil {
		return "", err
	}
	if c.Subject != site.String() || c.Session == "" {
		return "", fmt.Errorf("%w: resume token of another site", ErrUnauthorized)
	}
	return c.Session, nil
}

// VerifyIdentityToken verifies an identity token signed by site's backend
// and returns the customer's user id.
func (s *Store) VerifyIdentityToken(raw string, site Site) (string, error) {
	c, err := ParseIdentityToken(raw, site, s.cfg.Leeway)
	if err != nil {
		return "", err
	}
	return c.Subject, nil
}
