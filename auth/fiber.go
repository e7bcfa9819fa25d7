package auth

import (
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// localsKey types the fiber.Ctx locals this package sets.
type localsKey int

const (
	principalKey localsKey = iota
	ingestSiteKey
	clientKey
)

// Caller returns the request's principal, nil when anonymous. It is the one
// accessor handlers use.
func Caller(c *fiber.Ctx) *Principal {
	p, _ := c.Locals(principalKey).(*Principal)
	return p
}

// Middleware authenticates the request from Authorization: Bearer (a JWT or
// an sk_ API key) or the session cookie, and makes the principal available
// through Caller. Anonymous requests pass on (RequireAuth and RequireRole
// refuse them); a Bearer credential that does not verify is answered with
// 401, a session cookie that does not verify is cleared and ignored. State-changing requests (every method but
// GET, HEAD, OPTIONS) must come from the dashboard origin: a foreign Origin
// is answered with 403, and so is a cookie-authenticated request that has
// neither Origin nor Sec-Fetch-Site: same-origin.
//
// Mount it on the dashboard and /api/v1 routes, not on /v1/ingest or
// /v1/events (whose origins are the customer sites'; see IngestOrigin).
// Several packages mount it on /api/v1; a request is authenticated by the
// first only, the others pass it on.
func (s *Store) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if _, done := c.Locals(principalKey).(*Principal); done {
			return c.Next() // set, if to nil, by an earlier mount
		}
		var p *Principal
		if h := c.Get(fiber.HeaderAuthorization); h != "" {
			tok, ok := bearerToken(h)
			if !ok {
				return unauthorized(c, "Authorization must be Bearer")
			}
			var err error
			if p, err = s.Authenticate(tok); err != nil {
				return unauthorized(c, "invalid credentials")
			}
		} else if tok := c.Cookies(s.cfg.SessionCookie); tok != "" {
			// A stale cookie makes the request anonymous (so that the login
			// form still works) and is removed.
			if u, err := s.VerifySession(tok); err == nil {
				p = &Principal{User: &u, ViaCookie: true}
			} else {
				s.ClearSessionCookie(c)
			}
		}
		if !safeMethod(c.Method()) {
			origin := c.Get(fiber.HeaderOrigin)
			switch {
			case origin != "":
				if !s.isDashboardOrigin(c, origin) {
					return forbidden(c, "origin not allowed")
				}
			case p != nil && p.ViaCookie && c.Get("Sec-Fetch-Site") != "same-origin":
				return forbidden(c, "origin required")
			}
		}
		c.Locals(principalKey, p)
		return c.Next()
	}
}

// RequireAuth refuses anonymous requests with 401.
func RequireAuth() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if Caller(c) == nil {
			return unauthorized(c, "authentication required")
		}
		return c.Next()
	}
}

// RequireRole refuses requests whose caller does not hold at least need in
// the org named by route parameter orgParam: 401 anonymous, 403 otherwise,
// 404 when the parameter is not an id.
func (s *Store) RequireRole(orgParam string, need Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		org, err := uuid.Parse(c.Params(orgParam))
		if err != nil {
			return c.Status(fiber.StatusNotFound).JSON(fiber.Map{"error": "no such org"})
		}
		if err := s.Authorize(Caller(c), org, need); err != nil {
			if errors.Is(err, ErrUnauthorized) {
				return unauthorized(c, "authentication required")
			}
			return forbidden(c, "needs role "+string(need))
		}
		return c.Next()
	}
}

// VisibleSiteIDs returns the ids of the sites the request's caller may read,
// restricted to org unless it is uuid.Nil.
func (s *Store) VisibleSiteIDs(c *fiber.Ctx, org uuid.UUID) []uuid.UUID {
	sites := s.VisibleSites(Caller(c), org)
	ids := make([]uuid.UUID, len(sites))
	for i, st := range sites {
		ids[i] = st.ID
	}
	return ids
}

// SetSessionCookie stores a session in the session cookie: HttpOnly,
// SameSite=Strict, Secure when the request came over TLS or the dashboard
// origin is https.
func (s *Store) SetSessionCookie(c *fiber.Ctx, sess Session) {
	c.Cookie(&fiber.Cookie{
		Name: s.cfg.SessionCookie, Value: sess.Token, Path: "/", Expires: sess.ExpiresAt,
		HTTPOnly: true, Secure: s.secure(c), SameSite: fiber.CookieSameSiteStrictMode,
	})
}

// ClearSessionCookie removes the session cookie (logout).
func (s *Store) ClearSessionCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name: s.cfg.SessionCookie, Value: "", Path: "/", Expires: time.Unix(1, 0), MaxAge: -1,
		HTTPOnly: true, Secure: s.secure(c), SameSite: fiber.CookieSameSiteStrictMode,
	})
}

func (s *Store) secure(c *fiber.Ctx) bool {
	return ClientScheme(c) == "https" || strings.HasPrefix(s.cfg.DashboardOrigin, "https://")
}

// IngestOrigin guards the ingest WebSocket upgrade (and POST /v1/events):
// the public site key in query parameter "site" must name a live site and
// the request's Origin must be one of the site's allowed origins, exactly;
// otherwise 403 before any upgrade. The site is then available through IngestSite.
func (s *Store) IngestOrigin() fiber.Handler {
	return func(c *fiber.Ctx) error {
		site, err := s.SiteByPublicKey(c.Query("site"))
		if err != nil {
			return forbidden(c, "unknown site key")
		}
		if err := CheckOrigin(site, c.Get(fiber.HeaderOrigin)); err != nil {
			return forbidden(c, "origin not allowed for this site")
		}
		c.Locals(ingestSiteKey, site)
		return c.Next()
	}
}

// IngestSite returns the site IngestOrigin resolved for this request.
func IngestSite(c *fiber.Ctx) (Site, bool) {
	s, ok := c.Locals(ingestSiteKey).(Site)
	return s, ok
}

// LiveOrigin guards the live-stream WebSocket upgrade: the Origin must be the
// dashboard's own origin, otherwise 403 before any upgrade.
func (s *Store) LiveOrigin() fiber.Handler {
	return func(c *fiber.Ctx) error {
		origin := c.Get(fiber.HeaderOrigin)
		if origin == "" || !s.isDashboardOrigin(c, origin) {
			return forbidden(c, "origin not allowed")
		}
		return c.Next()
	}
}

// CheckOrigin reports whether origin (an Origin header) is one of site's
// allowed origins. Comparison is exact after normalization (ParseOrigin);
// there are no wildcards, and a missing or "null" origin is refused.
func CheckOrigin(site Site, origin string) error {
	o, err := ParseOrigin(origin)
	if err != nil {
		return ErrForbidden
	}
	for _, allowed := range site.AllowedOrigins {
		if o == allowed {
			return nil
		}
	}
	return ErrForbidden
}

// isDashboardOrigin compares origin with Config.DashboardOrigin, or with the
// request's own scheme and host when none is configured.
func (s *Store) isDashboardOrigin(c *fiber.Ctx, origin string) bool {
	o, err := ParseOrigin(origin)
	if err != nil {
		return false
	}
	want := s.cfg.DashboardOrigin
	if want == "" {
		want = ClientScheme(c) + "://" + string(c.Request().Host())
	}
	w, err := ParseOrigin(want)
	return err == nil && o == w
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

func unauthorized(c *fiber.Ctx, msg string) error {
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="pulse"`)
	return c.Status(fiber.StatusUnauthorized).JSON(fiber.Map{"error": msg})
}

func forbidden(c *fiber.Ctx, msg string) error {
	return c.Status(fiber.StatusForbidden).JSON(fiber.Map{"error": msg})
}
