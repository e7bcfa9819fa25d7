package auth

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestLoginLimiterWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoginLimiter(time.Minute, 3, 5)
		ip := netip.MustParseAddr("192.0.2.1")
		for i := range 3 {
			if _, ok := l.allow("a@x.test", ip, time.Now()); !ok {
				t.Fatalf("attempt %d refused", i+1)
			}
		}
		retry, ok := l.allow("a@x.test", ip, time.Now())
		if ok || retry != time.Minute {
			t.Fatalf("4th attempt on the account = %v %v, want refused for the rest of the window", retry, ok)
		}
		// The address has 2 attempts left, for other accounts.
		for _, acc := range []string{"b@x.test", "c@x.test"} {
			if _, ok := l.allow(acc, ip, time.Now()); !ok {
				t.Fatalf("attempt for %s refused", acc)
			}
		}
		if _, ok := l.allow("d@x.test", ip, time.Now()); ok {
			t.Fatal("6th attempt from one address allowed")
		}
		// Another address in the same IPv6 /64 counts as the same client.
		v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff")
		for range 5 {
			l.allow("e@x.test", v6a, time.Now())
			l.succeeded("e@x.test")
		}
		if _, ok := l.allow("f@x.test", v6b, time.Now()); ok {
			t.Fatal("a neighbour in the same /64 escaped the address limit")
		}
		if _, ok := l.allow("f@x.test", netip.MustParseAddr("2001:db8:0:1::1"), time.Now()); !ok {
			t.Fatal("another /64 was limited")
		}
		time.Sleep(time.Minute)
		if _, ok := l.allow("a@x.test", ip, time.Now()); !ok {
			t.Fatal("the next window still refuses")
		}
	})
}

func TestLoginRateLimitedAndCredentialsChecked(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	cfg.LoginAttemptsPerAccount = 3
	s := openStore(t, db, cfg)
	f := newFixture(t, s, "acme")
	ctx := context.Background()
	ip := netip.MustParseAddr("198.51.100.4")
	if _, _, err := s.Login(ctx, "nobody@acme.test", testPassword, ip); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown email: %v", err)
	}
	if _, _, err := s.Login(ctx, "owner@acme.test", "wrong password!", ip); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	u, sess, err := s.Login(ctx, "OWNER@acme.test ", testPassword, ip)
	if err != nil || u.ID != f.owner.ID {
		t.Fatalf("good login: %v, %v", u.ID, err)
	}
	if got, err := s.VerifySession(sess.Token); err != nil || got.ID != f.owner.ID {
		t.Fatalf("issued session: %v, %v", got.ID, err)
	}
	for range 3 {
		s.Login(ctx, "viewer@acme.test", "wrong password!", ip)
	}
	_, _, err = s.Login(ctx, "viewer@acme.test", testPassword, ip)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.RetryAfter > DefaultLoginWindow {
		t.Fatalf("4th attempt on an account: %v, want RateLimitError", err)
	}
}
