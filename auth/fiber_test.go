package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// testApp is a tiny API on the middleware: reading an org's sites needs a
// viewer, changing its settings an admin; /sites lists what the caller may
// see through the scoping helper.
func testApp(s *Store) *fiber.App {
	app := fiber.New()
	app.Get("/v1/ingest", s.IngestOrigin(), func(c *fiber.Ctx) error {
		site, _ := IngestSite(c)
		return c.SendString(site.ID.String())
	})
	app.Get("/v1/live", s.LiveOrigin(), func(c *fiber.Ctx) error { return c.SendString("upgrade") })
	api := app.Group("/api/v1", s.Middleware())
	api.Get("/me", RequireAuth(), func(c *fiber.Ctx) error { return c.SendString(Caller(c).String()) })
	api.Get("/sites", RequireAuth(), func(c *fiber.Ctx) error { return c.JSON(s.VisibleSiteIDs(c, uuid.Nil)) })
	api.Get("/orgs/:org/sites", s.RequireRole("org", RoleViewer), func(c *fiber.Ctx) error {
		org, _ := uuid.Parse(c.Params("org"))
		return c.JSON(s.VisibleSiteIDs(c, org))
	})
	api.Put("/orgs/:org/settings", s.RequireRole("org", RoleAdmin), func(c *fiber.Ctx) error {
		return c.SendString("changed")
	})
	api.Post("/logout", func(c *fiber.Ctx) error {
		s.ClearSessionCookie(c)
		return c.SendStatus(fiber.StatusNoContent)
	})
	return app
}

type call struct {
	method, path string
	bearer       string
	cookie       string
	origin       string
	header       map[string]string
}

func do(t *testing.T, app *fiber.App, s *Store, c call) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(c.method, "https://app.pulse.test"+c.path, nil)
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: s.cfg.SessionCookie, Value: c.cookie})
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func session(t *testing.T, s *Store, u User) string {
	t.Helper()
	sess, err := s.IssueSession(u)
	if err != nil {
		t.Fatal(err)
	}
	return sess.Token
}

func TestMiddlewareRefuses(t *testing.T) {
	db := chtest.Open(t)
	s := openStore(t, db, testConfig(t))
	app := testApp(s)
	a := newFixture(t, s, "acme")
	b := newFixture(t, s, "globex")
	ctx := context.Background()
	_, readKey, err := s.CreateAPIKey(ctx, a.org.ID, "read", []Scope{ScopeRead}, a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, ingestKey, err := s.CreateAPIKey(ctx, a.org.ID, "ingest", []Scope{ScopeIngest}, a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	adminKey, adminSecret, err := s.CreateAPIKey(ctx, a.org.ID, "admin", []Scope{ScopeAdmin}, a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, share, err := s.CreateShareLink(ctx, a.site.ID, "", time.Hour, a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	const dash = "https://app.pulse.test"
	aSites := "/api/v1/orgs/" + a.org.ID.String() + "/sites"
	aSettings := "/api/v1/orgs/" + a.org.ID.String() + "/settings"
	bSites := "/api/v1/orgs/" + b.org.ID.String() + "/sites"
	bSettings := "/api/v1/orgs/" + b.org.ID.String() + "/settings"

	tests := []struct {
		name string
		call call
		want int
	}{
		{"anonymous", call{method: "GET", path: "/api/v1/me"}, 401},
		{"malformed Authorization", call{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Basic eDp5"}}, 401},
		{"garbage bearer", call{method: "GET", path: "/api/v1/me", bearer: "not.a.token"}, 401},
		{"unknown API key", call{method: "GET", path: "/api/v1/me", bearer: "sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, 401},
		{"expired cookie", call{method: "GET", path: "/api/v1/me", cookie: "expired.token.value"}, 401},
		{"viewer reads own org", call{method: "GET", path: aSites, bearer: session(t, s, a.viewer)}, 200},
		{"viewer changes settings", call{method: "PUT", path: aSettings, bearer: session(t, s, a.viewer), origin: dash}, 403},
		{"admin changes settings", call{method: "PUT", path: aSettings, bearer: session(t, s, a.admin), origin: dash}, 200},
		{"org A owner reads org B", call{method: "GET", path: bSites, bearer: session(t, s, a.owner)}, 403},
		{"org A owner changes org B", call{method: "PUT", path: bSettings, bearer: session(t, s, a.owner), origin: dash}, 403},
		{"org A read key reads org A", call{method: "GET", path: aSites, bearer: readKey}, 200},
		{"org A read key changes org A", call{method: "PUT", path: aSettings, bearer: readKey, origin: dash}, 403},
		{"org A read key reads org B", call{method: "GET", path: bSites, bearer: readKey}, 403},
		{"ingest key reads data", call{method: "GET", path: aSites, bearer: ingestKey}, 403},
		{"admin key changes org A", call{method: "PUT", path: aSettings, bearer: adminSecret}, 200},
		{"admin key changes org B", call{method: "PUT", path: bSettings, bearer: adminSecret}, 403},
		{"share link changes settings", call{method: "PUT", path: aSettings, bearer: share, origin: dash}, 403},
		{"share link reads the org", call{method: "GET", path: aSites, bearer: share}, 403},
		{"share link token as session cookie", call{method: "GET", path: "/api/v1/me", cookie: share}, 401},
		{"not an org id", call{method: "GET", path: "/api/v1/orgs/x/sites", bearer: session(t, s, a.owner)}, 404},
		{"operator reads org B", call{method: "GET", path: bSites, bearer: session(t, s, operator(t, s))}, 200},
		{"foreign Origin on a state change", call{method: "PUT", path: aSettings, bearer: session(t, s, a.admin), origin: "https://evil.test"}, 403},
		{"look-alike Origin", call{method: "PUT", path: aSettings, bearer: session(t, s, a.admin), origin: "https://app.pulse.test.evil.test"}, 403},
		{"null Origin", call{method: "PUT", path: aSettings, bearer: session(t, s, a.admin), origin: "null"}, 403},
		{"cookie state change without Origin", call{method: "PUT", path: aSettings, cookie: session(t, s, a.admin)}, 403},
		{"cookie state change same-origin fetch", call{method: "PUT", path: aSettings, cookie: session(t, s, a.admin),
			header: map[string]string{"Sec-Fetch-Site": "same-origin"}}, 200},
		{"cookie state change from the dashboard", call{method: "PUT", path: aSettings, cookie: session(t, s, a.admin), origin: dash}, 200},
		{"anonymous logout from a foreign origin", call{method: "POST", path: "/api/v1/logout", origin: "https://evil.test"}, 403},
		{"logout with a stale cookie", call{method: "POST", path: "/api/v1/logout", cookie: "stale", origin: dash}, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, app, s, tt.call)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.call.method, tt.call.path, resp.StatusCode, body, tt.want)
			}
		})
	}

	t.Run("revoked admin key", func(t *testing.T) {
		if err := s.RevokeAPIKey(ctx, adminKey.ID); err != nil {
			t.Fatal(err)
		}
		if resp, _ := do(t, app, s, call{method: "PUT", path: aSettings, bearer: adminSecret}); resp.StatusCode != 401 {
			t.Fatalf("revoked key: %d, want 401", resp.StatusCode)
		}
	})
}

func operator(t *testing.T, s *Store) User {
	t.Helper()
	if u, err := s.UserByEmail("ops@pulse.test"); err == nil {
		return u
	}
	u, err := s.CreateUser(context.Background(), NewUser{Email: "ops@pulse.test", Password: testPassword, Operator: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestScopingHelperSeesOnlyOwnTenant(t *testing.T) {
	db := chtest.Open(t)
	s := openStore(t, db, testConfig(t))
	app := testApp(s)
	a := newFixture(t, s, "acme")
	b := newFixture(t, s, "globex")
	second, err := s.CreateSite(context.Background(), a.org.ID, SiteInput{Domain: "shop.acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	_, share, err := s.CreateShareLink(context.Background(), a.site.ID, "", time.Hour, a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	sites := func(bearer string) []uuid.UUID {
		resp, body := do(t, app, s, call{method: "GET", path: "/api/v1/sites", bearer: bearer})
		if resp.StatusCode != 200 {
			t.Fatalf("GET /sites = %d %s", resp.StatusCode, body)
		}
		var ids []uuid.UUID
		if err := json.Unmarshal([]byte(body), &ids); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(ids, func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
		return ids
	}
	sorted := func(ids ...uuid.UUID) []uuid.UUID {
		slices.SortFunc(ids, func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
		return ids
	}
	if got, want := sites(session(t, s, a.viewer)), sorted(a.site.ID, second.ID); !slices.Equal(got, want) {
		t.Fatalf("org A viewer sees %v, want %v", got, want)
	}
	if got, want := sites(session(t, s, b.owner)), sorted(b.site.ID); !slices.Equal(got, want) {
		t.Fatalf("org B owner sees %v, want %v", got, want)
	}
	if got, want := sites(share), sorted(a.site.ID); !slices.Equal(got, want) {
		t.Fatalf("share link sees %v, want %v", got, want)
	}
	if got, want := sites(session(t, s, operator(t, s))), sorted(a.site.ID, second.ID, b.site.ID); !slices.Equal(got, want) {
		t.Fatalf("operator sees %v, want %v", got, want)
	}
	// The org-restricted form and the single-site check agree.
	pa := &Principal{User: &a.owner}
	if got := s.VisibleSites(pa, b.org.ID); len(got) != 0 {
		t.Fatalf("org A owner, restricted to org B, sees %v", got)
	}
	if _, err := s.VisibleSite(pa, b.site.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("org A owner reading org B's site: %v", err)
	}
	if _, err := s.VisibleSite(pa, a.site.ID); err != nil {
		t.Fatalf("org A owner reading own site: %v", err)
	}
}

func TestIngestAndLiveOrigins(t *testing.T) {
	db := chtest.Open(t)
	s := openStore(t, db, testConfig(t))
	app := testApp(s)
	f := newFixture(t, s, "acme")
	site, err := s.UpdateSite(context.Background(), f.site.ID, SiteUpdate{AllowedOrigins: &[]string{"https://acme.test", "http://localhost:8080"}})
	if err != nil {
		t.Fatal(err)
	}
	ingest := "/v1/ingest?site=" + site.PublicKey
	tests := []struct {
		name, path, origin string
		want               int
	}{
		{"allowed origin", ingest, "https://acme.test", 200},
		{"allowed origin, default port written out", ingest, "https://ACME.test:443", 200},
		{"second allowed origin", ingest, "http://localhost:8080", 200},
		{"origin not in the list", ingest, "https://evil.test", 403},
		{"subdomain of an allowed origin", ingest, "https://www.acme.test", 403},
		{"suffix look-alike", ingest, "https://acme.test.evil.test", 403},
		{"other scheme", ingest, "http://acme.test", 403},
		{"other port", ingest, "http://localhost:8081", 403},
		{"null origin", ingest, "null", 403},
		{"no origin", ingest, "", 403},
		{"unknown site key", "/v1/ingest?site=pk_nope", "https://acme.test", 403},
		{"no site key", "/v1/ingest", "https://acme.test", 403},
		{"live from the dashboard", "/v1/live", "https://app.pulse.test", 200},
		{"live from a customer site", "/v1/live", "https://acme.test", 403},
		{"live without origin", "/v1/live", "", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, app, s, call{method: "GET", path: tt.path, origin: tt.origin,
				header: map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}})
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s from %q = %d %s, want %d", tt.path, tt.origin, resp.StatusCode, body, tt.want)
			}
			if tt.want == 200 && tt.path == ingest && body != site.ID.String() {
				t.Fatalf("IngestSite = %q, want %s", body, site.ID)
			}
		})
	}
}

func TestLoginCookie(t *testing.T) {
	db := chtest.Open(t)
	s := openStore(t, db, testConfig(t))
	plainCfg := testConfig(t)
	plainCfg.DashboardOrigin = ""
	plain := openStore(t, db, plainCfg) // plain HTTP, e.g. pulse dev on localhost
	t.Run("no Secure over plain HTTP", func(t *testing.T) {
		app := fiber.New()
		app.Get("/", func(c *fiber.Ctx) error {
			plain.SetSessionCookie(c, Session{Token: "t", ExpiresAt: time.Now().Add(time.Hour)})
			return nil
		})
		resp, err := app.Test(httptest.NewRequest("GET", "http://localhost:8080/", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		set := strings.ToLower(resp.Header.Get("Set-Cookie"))
		if strings.Contains(set, "secure") || !strings.Contains(set, "httponly") || !strings.Contains(set, "samesite=strict") {
			t.Fatalf("Set-Cookie over plain HTTP = %q", set)
		}
	})
	// X-Forwarded-Proto counts only from a trusted proxy (app.Test's
	// requests come from 0.0.0.0).
	for _, tt := range []struct {
		name, trusted string
		secure        bool
	}{{"X-Forwarded-Proto from anyone", "", false}, {"X-Forwarded-Proto from a trusted proxy", "0.0.0.0", true}} {
		t.Run(tt.name, func(t *testing.T) {
			app := fiber.New()
			if tt.trusted != "" {
				p, err := ParseProxies(tt.trusted)
				if err != nil {
					t.Fatal(err)
				}
				app.Use(p.Middleware())
			}
			app.Get("/", func(c *fiber.Ctx) error {
				plain.SetSessionCookie(c, Session{Token: "t", ExpiresAt: time.Now().Add(time.Hour)})
				return nil
			})
			req := httptest.NewRequest("GET", "http://localhost:8080/", nil)
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			if set := strings.ToLower(resp.Header.Get("Set-Cookie")); strings.Contains(set, "secure") != tt.secure {
				t.Fatalf("Set-Cookie = %q, want Secure %v", set, tt.secure)
			}
		})
	}
	f := newFixture(t, s, "acme")
	app := fiber.New()
	app.Post("/login", func(c *fiber.Ctx) error {
		_, sess, err := s.Login(c.UserContext(), c.FormValue("email"), c.FormValue("password"), netip.MustParseAddr("192.0.2.9"))
		if err != nil {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		s.SetSessionCookie(c, sess)
		return c.SendStatus(fiber.StatusNoContent)
	})
	app.Get("/me", s.Middleware(), RequireAuth(), func(c *fiber.Ctx) error { return c.SendString(Caller(c).String()) })
	req := httptest.NewRequest("POST", "/login", strings.NewReader("email=owner%40acme.test&password="+strings.ReplaceAll(testPassword, " ", "+")))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := app.Test(req, -1)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("login = %v, %v", resp.StatusCode, err)
	}
	set := resp.Header.Get("Set-Cookie")
	for _, attr := range []string{"pulse_session=", "HttpOnly", "SameSite=Strict", "secure", "path=/"} {
		if !strings.Contains(strings.ToLower(set), strings.ToLower(attr)) {
			t.Fatalf("Set-Cookie %q lacks %s", set, attr)
		}
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "pulse_session" {
			cookie = c
		}
	}
	me := httptest.NewRequest("GET", "/me", nil)
	me.AddCookie(cookie)
	resp, err = app.Test(me, -1)
	body, _ := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(body) != "user:"+f.owner.ID.String() {
		t.Fatalf("GET /me with the cookie = %d %s %v", resp.StatusCode, body, err)
	}
}

func TestQuotaDecisionResponses(t *testing.T) {
	app := fiber.New()
	app.Get("/", func(c *fiber.Ctx) error {
		return Decision{Reason: ReasonEventsPerSecond, RetryAfter: 1500 * time.Millisecond}.Reject(c)
	})
	resp, err := app.Test(httptest.NewRequest("GET", "/", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("reject = %d Retry-After %q, want 429 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	code, reason := Decision{Reason: ReasonEventsPerMonth, RetryAfter: time.Hour}.CloseFrame()
	if code != CloseQuotaExceeded || reason != "events_per_month retry_after=3600" || len(reason) > 123 {
		t.Fatalf("close frame = %d %q", code, reason)
	}
}

// TestMiddlewareMountedTwice: the auth and query APIs each mount the
// middleware on /api/v1, and a request is authenticated by the first mount
// only. The credential is spoilt between the mounts, so a second
// verification would answer 401.
func TestMiddlewareMountedTwice(t *testing.T) {
	db := chtest.Open(t)
	s := openStore(t, db, testConfig(t))
	f := newFixture(t, s, "acme")
	app := fiber.New()
	app.Group("/api/v1", s.Middleware(), func(c *fiber.Ctx) error {
		c.Request().Header.Set(fiber.HeaderAuthorization, "Bearer spoilt")
		return c.Next()
	})
	app.Group("/api/v1", s.Middleware()).Get("/me", RequireAuth(), func(c *fiber.Ctx) error { return c.SendString(Caller(c).String()) })
	resp, body := do(t, app, s, call{method: "GET", path: "/api/v1/me", bearer: session(t, s, f.owner)})
	if resp.StatusCode != 200 || body != "user:"+f.owner.ID.String() {
		t.Fatalf("GET /api/v1/me through two mounts = %d %s, want 200 user:%s", resp.StatusCode, body, f.owner.ID)
	}
}
