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

// After LoginFreeFailures failures of one account from one address, each
// further failure doubles the wait before the next attempt from there; a
// good login clears it. Other addresses are not held back.
func TestLoginBackoffPerAccountAndAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoginLimiter(time.Hour, 1000, 1000)
		ip, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		for i := range LoginFreeFailures - 1 {
			if _, ok := l.allow("a@x.test", ip, time.Now()); !ok {
				t.Fatalf("free attempt %d refused", i+1)
			}
		}
		wait := LoginBackoffBase
		for range 4 {
			if _, ok := l.allow("a@x.test", ip, time.Now()); !ok {
				t.Fatal("attempt after the wait refused")
			}
			retry, ok := l.allow("a@x.test", ip, time.Now())
			if ok || retry != wait {
				t.Fatalf("attempt during the backoff = %v %v, want refused for %v", retry, ok, wait)
			}
			if _, ok := l.allow("a@x.test", other, time.Now()); !ok {
				t.Fatal("another address is held back by this one's backoff")
			}
			l.succeeded("a@x.test", other, time.Now()) // other is not counted against a@
			time.Sleep(wait)
			wait *= 2
		}
		if _, ok := l.allow("a@x.test", ip, time.Now()); !ok {
			t.Fatal("attempt after the last wait refused")
		}
		l.succeeded("a@x.test", ip, time.Now())
		for i := range LoginFreeFailures {
			if _, ok := l.allow("a@x.test", ip, time.Now()); !ok {
				t.Fatalf("after a good login, attempt %d refused", i+1)
			}
		}
		if got := backoffAfter(1000); got != LoginMaxBackoff {
			t.Fatalf("backoff after many failures = %v, want the cap %v", got, LoginMaxBackoff)
		}
	})
}

// Failures from unknown addresses stop an account's logins from unknown
// addresses for the rest of the window, but not from an address (or its
// /64) it logged in from; the per-address limit counts failures only.
func TestLoginAccountLimitSparesKnownAddresses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoginLimiter(time.Minute, 3, 5)
		home := netip.MustParseAddr("2001:db8:1::1")
		if _, ok := l.allow("a@x.test", home, time.Now()); !ok {
			t.Fatal("first login refused")
		}
		l.succeeded("a@x.test", home, time.Now())
		for i, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
			if _, ok := l.allow("a@x.test", netip.MustParseAddr(ip), time.Now()); !ok {
				t.Fatalf("failure %d refused", i+1)
			}
		}
		time.Sleep(10 * time.Second)
		retry, ok := l.allow("a@x.test", netip.MustParseAddr("192.0.2.9"), time.Now())
		if ok || retry != 50*time.Second {
			t.Fatalf("a 4th unknown address = %v %v, want refused for the 50 s left of the window", retry, ok)
		}
		neighbour := netip.MustParseAddr("2001:db8:1::beef") // same /64 as home
		for i := range 3 {
			if _, ok := l.allow("a@x.test", neighbour, time.Now()); !ok {
				t.Fatalf("known /64, attempt %d refused", i+1)
			}
			l.succeeded("a@x.test", neighbour, time.Now())
		}
		// Good logins do not use up the address budget (an office behind one address).
		office := netip.MustParseAddr("198.51.100.1")
		for i := range 20 {
			acc := string(rune('b'+i)) + "@x.test"
			if _, ok := l.allow(acc, office, time.Now()); !ok {
				t.Fatalf("good login %d from one address refused", i+1)
			}
			l.succeeded(acc, office, time.Now())
		}
		time.Sleep(50 * time.Second)
		if _, ok := l.allow("a@x.test", netip.MustParseAddr("192.0.2.9"), time.Now()); !ok {
			t.Fatal("the next window still refuses")
		}
	})
}

// A full table forgets its least recently used key, not a recent one.
func TestLRUForgetsTheLeastRecentlyUsed(t *testing.T) {
	c := newLRU[string, int](2)
	*c.add("a") = 1
	*c.add("b") = 2
	c.get("a")
	*c.add("c") = 3
	if c.len() != 2 || c.get("b") != nil || c.get("a") == nil || *c.get("c") != 3 {
		t.Fatalf("after a, b, use of a, c: a %v b %v c %v len %d", c.get("a"), c.get("b"), c.get("c"), c.len())
	}
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
	for i, a := range []string{"198.51.100.5", "198.51.100.6", "198.51.100.7"} {
		if _, _, err := s.Login(ctx, "viewer@acme.test", "wrong password!", netip.MustParseAddr(a)); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password %d: %v", i+1, err)
		}
	}
	_, _, err = s.Login(ctx, "viewer@acme.test", testPassword, ip)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.RetryAfter > DefaultLoginWindow {
		t.Fatalf("4th attempt on an account from an unknown address: %v, want RateLimitError", err)
	}
}

func TestAddrKeyGroupsIPv6By64(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
	} {
		if ka, kb := AddrKey(netip.MustParseAddr(tt.a)), AddrKey(netip.MustParseAddr(tt.b)); ka != kb {
			t.Errorf("%s counts as %s, %s as %s: want one address", tt.a, ka, tt.b, kb)
		}
	}
	if ka, kb := AddrKey(netip.MustParseAddr("2001:db8:1:2::1")), AddrKey(netip.MustParseAddr("2001:db8:1:3::1")); ka == kb {
		t.Errorf("two /64s count as one address %s", ka)
	}
	if k := AddrKey(netip.Addr{}); k.IsValid() {
		t.Errorf("an invalid address counts as %s", k)
	}
}
