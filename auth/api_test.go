package auth

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func apiApp(s *Store) *fiber.App {
	app := fiber.New()
	NewAPI(s, slog.New(slog.DiscardHandler)).Register(app)
	return app
}

// apiCall sends a JSON request with a bearer token, as a script would.
func apiCall(t *testing.T, app *fiber.App, method, path, bearer string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = strings.NewReader(string(raw))
	}
	req := httptest.NewRequest(method, "https://app.pulse.test"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// tenantWorld is two orgs, each with members, a site, a key, an invite and a share link.
type tenantWorld struct {
	a, b                   fixture
	bKey, bInvite, bShare  uuid.UUID
	bKeySecret, bShareTok  string
	aKeySecret             string
	ownerA, viewerA, admnA string
}

func newTenantWorld(t *testing.T, s *Store) tenantWorld {
	t.Helper()
	ctx := context.Background()
	w := tenantWorld{a: newFixture(t, s, "org-a"), b: newFixture(t, s, "org-b")}
	key, secret, err := s.CreateAPIKey(ctx, w.b.org.ID, "b key", []Scope{ScopeAdmin}, w.b.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.bKey, w.bKeySecret = key.ID, secret
	_, w.aKeySecret, err = s.CreateAPIKey(ctx, w.a.org.ID, "a key", []Scope{ScopeAdmin, ScopeRead}, w.a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	inv, _, err := s.CreateInvite(ctx, w.b.org.ID, "new@org-b.test", RoleViewer, w.b.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.bInvite = inv.ID
	link, tok, err := s.CreateShareLink(ctx, w.b.site.ID, "public", time.Hour, w.b.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.bShare, w.bShareTok = link.ID, tok
	w.ownerA, w.viewerA, w.admnA = session(t, s, w.a.owner), session(t, s, w.a.viewer), session(t, s, w.a.admin)
	return w
}

// fill puts org B's identifiers into every parameter of path.
func (w tenantWorld) fill(path string) string {
	return w.fillOwn(path, w.b.org.ID, w.b.site.ID)
}

// fillOwn puts org and site into the :org and :site parameters and org B's
// ids into the nested ones (:user, :id).
func (w tenantWorld) fillOwn(path string, org, site uuid.UUID) string {
	id := w.bKey
	switch {
	case strings.Contains(path, "/invites/:id"):
		id = w.bInvite
	case strings.Contains(path, "/share-links/:id"):
		id = w.bShare
	}
	r := strings.NewReplacer(":org", org.String(), ":site", site.String(), ":user", w.b.owner.ID.String(), ":id", id.String())
	return r.Replace(path)
}

func TestAPIRefusesEveryCrossTenantRequest(t *testing.T) {
	s := openStore(t, chtest.Open(t), testConfig(t))
	w := newTenantWorld(t, s)
	app := apiApp(s)

	bodies := map[string]any{
		"POST":  map[string]any{"name": "x", "domain": "evil.test", "role": "owner", "email": "evil@x.test", "scopes": []string{"admin"}},
		"PATCH": map[string]any{"name": "hijacked", "time_zone": "Europe/Berlin"},
		"PUT":   map[string]any{"role": "owner", "events_per_second": 1},
	}
	checked := 0
	for _, route := range app.GetRoutes(true) {
		if !strings.Contains(route.Path, ":") || route.Method == "HEAD" {
			continue
		}
		for name, bearer := range map[string]string{"owner session": w.ownerA, "admin api key": w.aKeySecret} {
			path := w.fill(route.Path)
			status, body := apiCall(t, app, route.Method, path, bearer, bodies[route.Method])
			if status != fiber.StatusForbidden && status != fiber.StatusNotFound {
				t.Errorf("%s of org A: %s %s = %d %s; want 403 or 404", name, route.Method, route.Path, status, body)
			}
			for _, secret := range []string{w.b.site.PublicKey, w.b.site.IdentitySecret, w.bKeySecret} {
				if strings.Contains(body, secret) {
					t.Errorf("%s %s leaked org B's %q", route.Method, route.Path, secret)
				}
			}
		}
		checked++

		// The caller's own org or site in the path, org B's member, key,
		// invite or share link nested in it.
		if strings.Contains(route.Path, ":user") || strings.Contains(route.Path, ":id") {
			path := w.fillOwn(route.Path, w.a.org.ID, w.a.site.ID)
			status, body := apiCall(t, app, route.Method, path, w.ownerA, bodies[route.Method])
			if status != fiber.StatusNotFound {
				t.Errorf("owner of A: %s %s with B's nested id = %d %s; want 404", route.Method, route.Path, status, body)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked %d parameterised routes; the API has more", checked)
	}

	// Nothing of org B changed, and B is invisible in A's listings.
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if org, _ := s.Org(w.b.org.ID); org.Name != "org-b" {
		t.Fatalf("org B renamed to %q", org.Name)
	}
	if _, err := s.Site(w.b.site.ID); err != nil {
		t.Fatalf("org B's site: %v", err)
	}
	if _, err := s.AuthenticateAPIKey(w.bKeySecret); err != nil {
		t.Fatalf("org B's key: %v", err)
	}
	if role, _ := s.RoleIn(&Principal{User: &w.b.owner}, w.b.org.ID); role != RoleOwner {
		t.Fatalf("org B's owner is now %q", role)
	}
	if _, body := apiCall(t, app, "GET", "/api/v1/orgs", w.ownerA, nil); strings.Contains(body, w.b.org.ID.String()) || !strings.Contains(body, w.a.org.ID.String()) {
		t.Fatalf("GET /orgs for A = %s", body)
	}
	// A share link of B's site reads that site only.
	if status, _ := apiCall(t, app, "GET", "/api/v1/sites/"+w.b.site.ID.String(), w.bShareTok, nil); status != 200 {
		t.Fatalf("share link reading its own site = %d", status)
	}
	if status, _ := apiCall(t, app, "GET", "/api/v1/sites/"+w.a.site.ID.String(), w.bShareTok, nil); status != 404 {
		t.Fatalf("share link of B reading A's site = %d, want 404", status)
	}
	if status, _ := apiCall(t, app, "PATCH", "/api/v1/sites/"+w.b.site.ID.String(), w.bShareTok, map[string]any{"time_zone": "UTC"}); status != 403 {
		t.Fatalf("share link changing its site = %d, want 403", status)
	}
}

func TestAPIViewerCannotChangeSettings(t *testing.T) {
	s := openStore(t, chtest.Open(t), testConfig(t))
	w := newTenantWorld(t, s)
	app := apiApp(s)
	org, site := w.a.org.ID.String(), w.a.site.ID.String()
	for _, c := range []struct{ method, path string }{
		{"PATCH", "/api/v1/orgs/" + org},
		{"DELETE", "/api/v1/orgs/" + org},
		{"POST", "/api/v1/orgs/" + org + "/sites"},
		{"POST", "/api/v1/orgs/" + org + "/keys"},
		{"GET", "/api/v1/orgs/" + org + "/keys"},
		{"POST", "/api/v1/orgs/" + org + "/invites"},
		{"PUT", "/api/v1/orgs/" + org + "/members/" + w.a.viewer.ID.String()},
		{"PATCH", "/api/v1/sites/" + site},
		{"DELETE", "/api/v1/sites/" + site},
		{"POST", "/api/v1/sites/" + site + "/share-links"},
		{"POST", "/api/v1/sites/" + site + "/identity-secret"},
		{"PUT", "/api/v1/orgs/" + org + "/quota"},
	} {
		status, body := apiCall(t, app, c.method, c.path, w.viewerA, map[string]any{"role": "admin", "name": "x", "domain": "v.test"})
		if status != 403 {
			t.Errorf("viewer %s %s = %d %s, want 403", c.method, c.path, status, body)
		}
	}
	// Reading is allowed, without the identity secret.
	status, body := apiCall(t, app, "GET", "/api/v1/sites/"+site, w.viewerA, nil)
	if status != 200 || strings.Contains(body, "identity_secret") {
		t.Fatalf("viewer GET site = %d %s", status, body)
	}
	// An admin may not make themselves owner.
	if status, _ := apiCall(t, app, "PUT", "/api/v1/orgs/"+org+"/members/"+w.a.admin.ID.String(), w.admnA, map[string]any{"role": "owner"}); status != 403 {
		t.Fatalf("admin promoting to owner = %d, want 403", status)
	}
}

func TestAPIWholeLifecycle(t *testing.T) {
	s := openStore(t, chtest.Open(t), testConfig(t))
	app := apiApp(s)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, NewUser{Email: "dana@shop.test", Name: "Dana", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	expect := func(want int, method, path, bearer string, body any) map[string]any {
		t.Helper()
		status, raw := apiCall(t, app, method, path, bearer, body)
		if status != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, status, raw, want)
		}
		var out map[string]any
		_ = json.Unmarshal([]byte(raw), &out)
		return out
	}

	expect(401, "POST", "/api/v1/login", "", map[string]any{"email": "dana@shop.test", "password": "wrong"})
	login := expect(200, "POST", "/api/v1/login", "", map[string]any{"email": "dana@shop.test", "password": testPassword})
	tok := login["token"].(string)

	org := expect(201, "POST", "/api/v1/orgs", tok, map[string]any{"name": "Shop"})["id"].(string)
	site := expect(201, "POST", "/api/v1/orgs/"+org+"/sites", tok, map[string]any{"domain": "shop.test", "allowed_origins": []string{"https://shop.test"}})
	siteID := site["id"].(string)
	if !strings.HasPrefix(site["public_key"].(string), "pk_") || site["identity_secret"] == "" {
		t.Fatalf("created site = %v", site)
	}
	expect(409, "POST", "/api/v1/orgs/"+org+"/sites", tok, map[string]any{"domain": "shop.test"})
	expect(400, "POST", "/api/v1/orgs/"+org+"/sites", tok, map[string]any{"domain": "shop.test", "allowed_origins": []string{"https://*.shop.test"}})
	expect(200, "PATCH", "/api/v1/sites/"+siteID, tok, map[string]any{"time_zone": "Europe/Berlin"})
	if got := expect(200, "PATCH", "/api/v1/sites/"+siteID, tok, map[string]any{"honor_dnt": true}); got["honor_dnt"] != true || got["time_zone"] != "Europe/Berlin" {
		t.Fatalf("after turning DNT on: %v", got)
	}
	// Another node reads the setting from ClickHouse.
	other := openStore(t, s.db, testConfig(t))
	if st, err := other.Site(uuid.MustParse(siteID)); err != nil || !st.HonorDNT || st.TimeZone != "Europe/Berlin" {
		t.Fatalf("second store sees %+v, %v", st, err)
	}

	key := expect(201, "POST", "/api/v1/orgs/"+org+"/keys", tok, map[string]any{"name": "ci", "scopes": []string{"read"}})
	secret := key["secret"].(string)
	keyID := key["api_key"].(map[string]any)["id"].(string)
	if status, body := apiCall(t, app, "GET", "/api/v1/orgs/"+org+"/keys", tok, nil); status != 200 || strings.Contains(body, secret) {
		t.Fatalf("key list = %d; it must never show the secret: %s", status, body)
	}
	expect(200, "GET", "/api/v1/orgs/"+org+"/sites", secret, nil)
	expect(403, "POST", "/api/v1/orgs/"+org+"/sites", secret, map[string]any{"domain": "other.test"})
	expect(204, "DELETE", "/api/v1/orgs/"+org+"/keys/"+keyID, tok, nil)
	expect(401, "GET", "/api/v1/orgs/"+org+"/sites", secret, nil)

	inv := expect(201, "POST", "/api/v1/orgs/"+org+"/invites", tok, map[string]any{"email": "eli@shop.test", "role": "viewer"})
	accepted := expect(200, "POST", "/api/v1/invites/accept", "", map[string]any{"token": inv["token"], "name": "Eli", "password": testPassword})
	eli := accepted["user"].(map[string]any)["id"].(string)
	expect(404, "POST", "/api/v1/invites/accept", "", map[string]any{"token": inv["token"], "name": "Eli", "password": testPassword}) // single-use
	expect(200, "PUT", "/api/v1/orgs/"+org+"/members/"+eli, tok, map[string]any{"role": "admin"})
	expect(204, "DELETE", "/api/v1/orgs/"+org+"/members/"+eli, tok, nil)

	share := expect(201, "POST", "/api/v1/sites/"+siteID+"/share-links", tok, map[string]any{"name": "public", "expires_in": "24h"})
	shareTok := share["token"].(string)
	expect(200, "GET", "/api/v1/sites/"+siteID, shareTok, nil)
	expect(204, "DELETE", "/api/v1/sites/"+siteID+"/share-links/"+share["share_link"].(map[string]any)["id"].(string), tok, nil)
	expect(401, "GET", "/api/v1/sites/"+siteID, shareTok, nil)

	usage := expect(200, "GET", "/api/v1/orgs/"+org+"/usage?from=2026-11-01&to=2026-11-30", tok, nil)
	if _, ok := usage["quota"].(map[string]any)["events_per_second"]; !ok {
		t.Fatalf("usage = %v", usage)
	}
	expect(400, "GET", "/api/v1/orgs/"+org+"/usage?from=yesterday", tok, nil)

	expect(204, "POST", "/api/v1/me/password", tok, map[string]any{"old_password": testPassword, "new_password": "a much newer passphrase"})
	expect(401, "GET", "/api/v1/me", tok, nil) // a password change ends every session
	expect(403, "POST", "/api/v1/signup", "", map[string]any{"email": "x@y.test", "password": testPassword, "org": "Y"})
}

func TestAPILoginIsRateLimited(t *testing.T) {
	cfg := testConfig(t)
	cfg.LoginAttemptsPerAccount = 3
	s := openStore(t, chtest.Open(t), cfg)
	app := apiApp(s)
	f := newFixture(t, s, "rl")
	var last *http.Response
	for range 4 {
		req := httptest.NewRequest("POST", "https://app.pulse.test/api/v1/login", strings.NewReader(`{"email":"`+f.owner.Email+`","password":"nope"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		last = resp
	}
	if last.StatusCode != 429 || last.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth failed login = %d Retry-After %q, want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
}

// Behind a trusted proxy every visitor has their own login limit per
// address; from anyone else X-Forwarded-For changes nothing.
func TestAPILoginLimitPerForwardedClient(t *testing.T) {
	cfg := testConfig(t)
	cfg.LoginAttemptsPerIP = 2
	s := openStore(t, chtest.Open(t), cfg)
	f := newFixture(t, s, "xff")
	login := func(app *fiber.App, xff string) int {
		req := httptest.NewRequest("POST", "https://app.pulse.test/api/v1/login", strings.NewReader(`{"email":"`+f.owner.Email+`","password":"nope"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	proxies, err := ParseProxies("0.0.0.0") // app.Test's requests come from 0.0.0.0
	if err != nil {
		t.Fatal(err)
	}
	behind := fiber.New()
	behind.Use(proxies.Middleware())
	NewAPI(s, slog.New(slog.DiscardHandler)).Register(behind)
	for range 2 {
		if got := login(behind, "198.51.100.1, 203.0.113.7"); got != 401 {
			t.Fatalf("failed login within the limit = %d, want 401", got)
		}
	}
	if got := login(behind, "203.0.113.7"); got != 429 {
		t.Fatalf("third failed login from 203.0.113.7 = %d, want 429", got)
	}
	if got := login(behind, "203.0.113.8"); got != 401 {
		t.Fatalf("first failed login from 203.0.113.8 behind the same proxy = %d, want 401 (its own limit)", got)
	}
	// Without a trusted proxy the peer (0.0.0.0) is the client, whatever the header says.
	direct := apiApp(s)
	for range 2 {
		login(direct, "192.0.2.1")
	}
	if got := login(direct, "192.0.2.2"); got != 429 {
		t.Fatalf("third failed login from one peer claiming another address = %d, want 429", got)
	}
}

// TestSiteTimeZoneMustBeKnownToClickHouse: a zone Go loads and ClickHouse
// does not (right/UTC on 18.16) is a 400 on create and on update, and the
// site keeps its zone.
func TestSiteTimeZoneMustBeKnownToClickHouse(t *testing.T) {
	s := openStore(t, chtest.Open(t), testConfig(t))
	app := apiApp(s)
	ctx := context.Background()
	if _, err := time.LoadLocation("right/UTC"); err != nil {
		t.Skipf("Go cannot load right/UTC here (%v): nothing to compare", err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Email: "tz@shop.test", Name: "Tz", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	_, raw := apiCall(t, app, "POST", "/api/v1/login", "", map[string]any{"email": "tz@shop.test", "password": testPassword})
	var login map[string]any
	_ = json.Unmarshal([]byte(raw), &login)
	tok, _ := login["token"].(string)
	_, raw = apiCall(t, app, "POST", "/api/v1/orgs", tok, map[string]any{"name": "Tz"})
	var org map[string]any
	_ = json.Unmarshal([]byte(raw), &org)
	orgID, _ := org["id"].(string)

	status, body := apiCall(t, app, "POST", "/api/v1/orgs/"+orgID+"/sites", tok, map[string]any{"domain": "tz.test", "time_zone": "right/UTC"})
	if status != 400 || !strings.Contains(body, `right/UTC`) || !strings.Contains(body, "not known to ClickHouse") {
		t.Fatalf("create with right/UTC = %d %s, want 400 saying ClickHouse does not know it", status, body)
	}
	status, body = apiCall(t, app, "POST", "/api/v1/orgs/"+orgID+"/sites", tok, map[string]any{"domain": "tz.test", "time_zone": "Europe/Berlin"})
	if status != 201 {
		t.Fatalf("create with Europe/Berlin = %d %s", status, body)
	}
	var site map[string]any
	_ = json.Unmarshal([]byte(body), &site)
	siteID, _ := site["id"].(string)
	status, body = apiCall(t, app, "PATCH", "/api/v1/sites/"+siteID, tok, map[string]any{"time_zone": "right/UTC"})
	if status != 400 || !strings.Contains(body, "not known to ClickHouse") {
		t.Fatalf("update to right/UTC = %d %s, want 400", status, body)
	}
	if st, err := s.Site(uuid.MustParse(siteID)); err != nil || st.TimeZone != "Europe/Berlin" {
		t.Fatalf("after the refused update the site is %+v, %v; want Europe/Berlin kept", st, err)
	}
	// Asked twice, answered the same (the second from the cache).
	for range 2 {
		if known, err := s.db.KnowsTimeZone(ctx, "right/UTC"); err != nil || known {
			t.Fatalf("KnowsTimeZone(right/UTC) = %v, %v", known, err)
		}
		if known, err := s.db.KnowsTimeZone(ctx, "America/Ciudad_Juarez"); err != nil || !known {
			t.Fatalf("KnowsTimeZone(America/Ciudad_Juarez) = %v, %v", known, err)
		}
	}
}
