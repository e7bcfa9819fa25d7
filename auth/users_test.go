package auth

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

var testIP = netip.MustParseAddr("203.0.113.5")

func TestInvites(t *testing.T) {
	db := chtest.Open(t)
	s := openStore(t, db, testConfig(t))
	ctx := context.Background()
	f := newFixture(t, s, "acme")

	inv, token, err := s.CreateInvite(ctx, f.org.ID, "New.Person@Acme.test", RoleAdmin, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Email != "new.person@acme.test" || len(token) < 40 || token[:4] != "inv_" {
		t.Fatalf("invite %+v, token %q", inv, token)
	}
	if got := s.Invites(f.org.ID); len(got) != 1 || got[0].ID != inv.ID {
		t.Fatalf("open invites = %+v", got)
	}
	u, m, err := s.AcceptInvite(ctx, token, "New Person", "a new long password", testIP)
	if err != nil || u.Email != inv.Email || m.Role != RoleAdmin || m.OrgID != f.org.ID {
		t.Fatalf("accept = %+v %+v %v", u, m, err)
	}
	if _, _, err := s.AcceptInvite(ctx, token, "Again", "a new long password", testIP); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second use of an invite: %v", err)
	}
	// Another node refuses the used token too.
	if _, _, err := openStore(t, db, testConfig(t)).AcceptInvite(ctx, token, "", "a new long password", testIP); !errors.Is(err, ErrNotFound) {
		t.Fatalf("used invite on another node: %v", err)
	}
	if len(s.Invites(f.org.ID)) != 0 {
		t.Fatal("used invite still listed")
	}

	// An existing user must prove the account is theirs.
	_, token, err = s.CreateInvite(ctx, f.org.ID, "viewer@acme.test", RoleAdmin, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AcceptInvite(ctx, token, "", "not the password", testIP); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("existing user with a wrong password: %v", err)
	}
	if _, m, err := s.AcceptInvite(ctx, token, "", testPassword, testIP); err != nil || m.Role != RoleAdmin {
		t.Fatalf("existing user accepting: %+v %v", m, err)
	}

	// Expired and withdrawn invites do not work.
	short := testConfig(t)
	short.InviteLifetime = time.Second
	s2 := openStore(t, db, short)
	_, expired, err := s2.CreateInvite(ctx, f.org.ID, "late@acme.test", RoleViewer, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	withdrawn, wtoken, err := s2.CreateInvite(ctx, f.org.ID, "maybe@acme.test", RoleViewer, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.RevokeInvite(ctx, withdrawn.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.AcceptInvite(ctx, wtoken, "", "a new long password", testIP); !errors.Is(err, ErrNotFound) {
		t.Fatalf("withdrawn invite: %v", err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, _, err := s2.AcceptInvite(ctx, expired, "", "a new long password", testIP); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired invite: %v", err)
	}
	if _, err := s2.UserByEmail("late@acme.test"); !errors.Is(err, ErrNotFound) {
		t.Fatal("an expired invite created a user")
	}
}

func TestSignup(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	off := openStore(t, db, testConfig(t))
	if _, _, err := off.Signup(ctx, NewUser{Email: "a@b.test", Password: testPassword}, "B"); !errors.Is(err, ErrSignupDisabled) {
		t.Fatalf("signup with the default config: %v", err)
	}
	cfg := testConfig(t)
	cfg.AllowSignup = true
	on := openStore(t, db, cfg)
	u, o, err := on.Signup(ctx, NewUser{Email: "a@b.test", Password: testPassword, Operator: true}, "B Inc")
	if err != nil {
		t.Fatal(err)
	}
	if u.Operator {
		t.Fatal("signup granted the operator flag")
	}
	if role, ok := on.RoleIn(&Principal{User: &u}, o.ID); !ok || role != RoleOwner {
		t.Fatalf("signed-up user's role = %q %v, want owner", role, ok)
	}
	if _, _, err := on.Signup(ctx, NewUser{Email: "A@B.test", Password: testPassword}, "Again"); !errors.Is(err, ErrExists) {
		t.Fatalf("second signup with the same email: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
		f              func(string) (string, error)
	}{
		{"email", " Ann@Example.COM ", "ann@example.com", NormalizeEmail},
		{"email with display name", "Ann <ann@example.com>", "", NormalizeEmail},
		{"email without domain dot", "ann@example", "", NormalizeEmail},
		{"domain", "Shop.Example.com.", "shop.example.com", NormalizeDomain},
		{"domain with scheme", "https://example.com", "", NormalizeDomain},
		{"domain with unicode", "bücher.example", "", NormalizeDomain},
		{"domain label dash", "-a.example", "", NormalizeDomain},
		{"origin", "HTTPS://Example.com:443/", "https://example.com", ParseOrigin},
		{"origin with port", "http://localhost:8080", "http://localhost:8080", ParseOrigin},
		{"origin ipv6", "http://[::1]:3000", "http://[::1]:3000", ParseOrigin},
		{"origin wildcard", "https://*.example.com", "", ParseOrigin},
		{"origin with path", "https://example.com/app", "", ParseOrigin},
		{"origin with user", "https://u@example.com", "", ParseOrigin},
		{"origin null", "null", "", ParseOrigin},
		{"origin other scheme", "ftp://example.com", "", ParseOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f(tt.in)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("%q accepted as %q", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("%q = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
