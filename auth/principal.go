package auth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Principal is the authenticated caller of a request: a user with a session,
// an API key, or a share link. Exactly one of User, APIKey and ShareLink is set.
type Principal struct {
	User      *User
	APIKey    *APIKey
	ShareLink *ShareLink
	// ViaCookie is true when the session came from the session cookie, the
	// one credential a browser attaches by itself.
	ViaCookie bool
}

// Operator reports whether the caller is an operator of the hosted service.
func (p *Principal) Operator() bool { return p != nil && p.User != nil && p.User.Operator }

// String names the caller for logs without any secret.
func (p *Principal) String() string {
	switch {
	case p == nil:
		return "anonymous"
	case p.User != nil:
		return "user:" + p.User.ID.String()
	case p.APIKey != nil:
		return "api_key:" + p.APIKey.ID.String()
	case p.ShareLink != nil:
		return "share_link:" + p.ShareLink.ID.String()
	}
	return "anonymous"
}

// Authenticate resolves a bearer credential: a secret API key (sk_…), a
// session token, or a share link token.
func (s *Store) Authenticate(bearer string) (*Principal, error) {
	if isAPIKeySecret(bearer) {
		k, err := s.AuthenticateAPIKey(bearer)
		if err != nil {
			return nil, err
		}
		return &Principal{APIKey: &k}, nil
	}
	u, err := s.VerifySession(bearer)
	if err == nil {
		return &Principal{User: &u}, nil
	}
	if !errors.Is(err, jwt.ErrTokenInvalidAudience) {
		return nil, err
	}
	l, err := s.VerifyShareLink(bearer)
	if err != nil {
		return nil, err
	}
	return &Principal{ShareLink: &l}, nil
}

// RoleIn returns the role p holds in org: a member's role, owner for
// operators, admin for an org API key with the admin scope, viewer for one
// with the read scope. Share links hold no role.
func (s *Store) RoleIn(p *Principal, org uuid.UUID) (Role, bool) {
	switch {
	case p == nil:
		return "", false
	case p.User != nil:
		u, err := s.User(p.User.ID)
		if err != nil {
			return "", false
		}
		if u.Operator {
			if _, err := s.Org(org); err == nil {
				return RoleOwner, true
			}
			return "", false
		}
		m, ok := s.membership(org, u.ID)
		return m.Role, ok
	case p.APIKey != nil:
		k, err := s.APIKey(p.APIKey.ID)
		if err != nil || k.OrgID != org {
			return "", false
		}
		if k.HasScope(ScopeAdmin) {
			return RoleAdmin, true
		}
		if k.HasScope(ScopeRead) {
			return RoleViewer, true
		}
	}
	return "", false
}

// Authorize checks that p holds at least role need in org. It fails with
// ErrUnauthorized for no caller and ErrForbidden otherwise. Roles are read
// from the current state, so a removed member or revoked key is refused
// within one refresh interval even with a valid token.
func (s *Store) Authorize(p *Principal, org uuid.UUID, need Role) error {
	if p == nil {
		return fmt.Errorf("auth: authorize: %w", ErrUnauthorized)
	}
	have, ok := s.RoleIn(p, org)
	if !ok || !have.AtLeast(need) {
		return fmt.Errorf("auth: %s needs role %s in org %s: %w", p, need, org, ErrForbidden)
	}
	return nil
}

// VisibleSites returns the live sites p may read, restricted to org unless
// org is uuid.Nil: all sites for operators, the sites of a user's orgs, the
// sites of an API key's org (read or admin scope), the one site of a share link.
// Every handler that touches data scopes its queries with it.
func (s *Store) VisibleSites(p *Principal, org uuid.UUID) []Site {
	var out []Site
	add := func(o uuid.UUID) {
		if org == uuid.Nil || org == o {
			out = append(out, s.Sites(o)...)
		}
	}
	switch {
	case p == nil:
	case p.ShareLink != nil:
		l, err := s.ShareLink(p.ShareLink.ID)
		if err != nil {
			return nil
		}
		if site, err := s.Site(l.SiteID); err == nil && (org == uuid.Nil || org == site.OrgID) {
			out = append(out, site)
		}
	case p.Operator():
		if u, err := s.User(p.User.ID); err != nil || !u.Operator {
			return nil
		}
		for _, o := range s.Orgs() {
			add(o.ID)
		}
	case p.User != nil:
		for _, m := range s.Memberships(p.User.ID) {
			add(m.OrgID)
		}
	case p.APIKey != nil:
		if role, ok := s.RoleIn(p, p.APIKey.OrgID); ok && role.AtLeast(RoleViewer) {
			add(p.APIKey.OrgID)
		}
	}
	return out
}

// VisibleSite returns site when p may read it, and ErrNotFound otherwise (so
// that another tenant's site ids are not confirmed).
func (s *Store) VisibleSite(p *Principal, site uuid.UUID) (Site, error) {
	for _, st := range s.VisibleSites(p, uuid.Nil) {
		if st.ID == site {
			return st, nil
		}
	}
	return Site{}, notFound("site", site)
}

// CanIngest reports whether p may send events for site: an API key with the
// ingest scope of the site's org.
func (s *Store) CanIngest(p *Principal, site Site) bool {
	if p == nil || p.APIKey == nil {
		return false
	}
	k, err := s.APIKey(p.APIKey.ID)
	return err == nil && k.OrgID == site.OrgID && k.HasScope(ScopeIngest)
}

// bearerToken extracts the credential of an Authorization: Bearer header.
func bearerToken(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(header[len(prefix):])
	return tok, tok != ""
}
