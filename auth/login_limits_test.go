package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// Wrong passwords from one address, more than the account's limit, do not
// stop the owner from logging in from an address they logged in from before.
func TestFailuresElsewhereDoNotLockOutTheOwner(t *testing.T) {
	s := openStore(t, chtest.Open(t), testConfig(t))
	f := newFixture(t, s, "acme")
	ctx := context.Background()
	home, attacker := netip.MustParseAddr("198.51.100.20"), netip.MustParseAddr("203.0.113.66")
	if _, _, err := s.Login(ctx, f.owner.Email, testPassword, home); err != nil {
		t.Fatalf("first login from home: %v", err)
	}
	refused := 0
	for range DefaultLoginAttemptsPerAccount + 5 {
		_, _, err := s.Login(ctx, f.owner.Email, "wrong password!", attacker)
		var rl *RateLimitError
		switch {
		case errors.As(err, &rl):
			refused++
		case !errors.Is(err, ErrBadCredentials):
			t.Fatalf("wrong password: %v", err)
		}
	}
	if refused == 0 {
		t.Fatal("the attacking address was never slowed down")
	}
	if _, _, err := s.Login(ctx, f.owner.Email, testPassword, home); err != nil {
		t.Fatalf("the owner from their known address after %d failures elsewhere: %v", DefaultLoginAttemptsPerAccount+5, err)
	}
}

// A limiter holding more than MaxLimiterEntries addresses still lets a new
// one in.
func TestFullLoginLimiterStillAdmitsNewClients(t *testing.T) {
	l := newLoginLimiter(DefaultLoginWindow, DefaultLoginAttemptsPerAccount, DefaultLoginAttemptsPerIP)
	now := time.Now()
	for i := range MaxLimiterEntries + 10 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.allow(fmt.Sprintf("u%d@flood.test", i), ip, now)
	}
	if _, ok := l.allow("real@user.test", netip.MustParseAddr("2001:db8:aaaa::1"), now); !ok {
		t.Fatal("a fresh login from a new address is refused once the limiter is full")
	}
}

// Addresses in one IPv6 /64 share one budget; another /64 has its own.
func TestIPv6SlashSixtyFourSharesABudget(t *testing.T) {
	l := newLoginLimiter(time.Minute, 100, 5)
	now := time.Now()
	for i := range 5 {
		ip := netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1))
		if _, ok := l.allow(fmt.Sprintf("a%d@x.test", i), ip, now); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if _, ok := l.allow("z@x.test", netip.MustParseAddr("2001:db8::ffff:1"), now); ok {
		t.Fatal("a neighbour in the same /64 escaped the address limit")
	}
	if _, ok := l.allow("z@x.test", netip.MustParseAddr("2001:db8:0:1::1"), now); !ok {
		t.Fatal("another /64 was limited")
	}
}
