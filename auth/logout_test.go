package auth

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// status sends method path to app with the session token as a cookie (from
// the dashboard origin) or as a bearer and returns the status code.
func sessionStatus(t *testing.T, app *fiber.App, method, path, token string, asCookie bool) int {
	t.Helper()
	req := httptest.NewRequest(method, "https://app.pulse.test"+path, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://app.pulse.test")
	if asCookie {
		req.Header.Set("Cookie", DefaultSessionCookie+"="+token)
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// Logout ends the session it is called with, whether it came as the cookie
// or as a bearer: at once on the node that logged out, within a refresh on
// every other node, and no other session of the user.
func TestLogoutEndsTheSessionOnEveryNode(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	a, b := openStore(t, db, cfg), openStore(t, db, cfg)
	newFixture(t, a, "acme")
	appA, appB := apiApp(a), apiApp(b)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	ip := netip.MustParseAddr("192.0.2.7")
	var endedTokens []string
	for _, asCookie := range []bool{true, false} {
		_, ended, err := a.Login(context.Background(), "owner@acme.test", testPassword, ip)
		if err != nil {
			t.Fatal(err)
		}
		_, other, err := a.Login(context.Background(), "owner@acme.test", testPassword, ip)
		if err != nil {
			t.Fatal(err)
		}
		endedTokens = append(endedTokens, ended.Token)
		waitFor(t, propagation, "session works on node b", func() bool {
			return sessionStatus(t, appB, "GET", "/api/v1/me", ended.Token, false) == 200
		})
		if got := sessionStatus(t, appA, "POST", "/api/v1/logout", ended.Token, asCookie); got != 204 {
			t.Fatalf("logout (cookie %v) = %d", asCookie, got)
		}
		for _, viaCookie := range []bool{true, false} {
			if got := sessionStatus(t, appA, "GET", "/api/v1/me", ended.Token, viaCookie); got != 401 {
				t.Fatalf("logged-out session (logout by cookie %v) as cookie %v on the same node: %d, want 401", asCookie, viaCookie, got)
			}
		}
		waitFor(t, propagation, "logged-out session refused on node b", func() bool {
			return sessionStatus(t, appB, "GET", "/api/v1/me", ended.Token, false) == 401 &&
				sessionStatus(t, appB, "GET", "/api/v1/me", ended.Token, true) == 401
		})
		for name, app := range map[string]*fiber.App{"a": appA, "b": appB} {
			if got := sessionStatus(t, app, "GET", "/api/v1/me", other.Token, false); got != 200 {
				t.Fatalf("another session of the user on node %s after logout: %d, want 200", name, got)
			}
		}
	}
	// A node started after the logout knows it from its first read.
	appC := apiApp(openStore(t, db, cfg))
	for _, tok := range endedTokens {
		if got := sessionStatus(t, appC, "GET", "/api/v1/me", tok, false); got != 401 {
			t.Fatalf("logged-out session on a node started afterwards: %d, want 401", got)
		}
	}
}
