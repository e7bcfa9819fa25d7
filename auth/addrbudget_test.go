package auth

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// One client address may send AddressEventsPerDay events per tenant per UTC
// day, an IPv6 address counting by its /64; beyond, its events are refused
// until the next UTC midnight and counted as rejected in the usage. Other
// addresses, other tenants and senders without an address keep theirs.
func TestAddressDailyBudget(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	cfg.AddressEventsPerDay = 10
	s := openStore(t, db, cfg)
	ctx := context.Background()
	now := time.Date(2026, 11, 16, 18, 30, 0, 0, time.UTC)
	s.quotas.now = func() time.Time { return now }
	org, other := uuid.New(), uuid.New()
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7")

	allow := func(org uuid.UUID, addr netip.Addr, n int) {
		t.Helper()
		if d := s.AllowEvents(org, addr, n); !d.Allowed {
			t.Fatalf("%d events from %s: %+v, want allowed", n, addr, d)
		}
	}
	refuse := func(org uuid.UUID, addr netip.Addr, n int, retry time.Duration) {
		t.Helper()
		d := s.AllowEvents(org, addr, n)
		if d.Allowed || d.Reason != ReasonAddressEventsPerDay || d.RetryAfter != retry {
			t.Fatalf("%d events from %s: %+v, want refused (%s) for %s", n, addr, d, ReasonAddressEventsPerDay, retry)
		}
	}
	untilMidnight := 5*time.Hour + 30*time.Minute

	allow(org, a, 4)
	allow(org, a, 6)
	refuse(org, a, 1, untilMidnight)
	refuse(org, netip.MustParseAddr("::ffff:192.0.2.1"), 1, untilMidnight) // the same address, IPv4-mapped
	allow(org, b, 10)
	allow(other, a, 10) // the budget is per tenant
	allow(org, netip.Addr{}, 50)

	// Two addresses of one /64 share a budget; another /64 has its own.
	allow(org, netip.MustParseAddr("2001:db8:1:2::1"), 7)
	refuse(org, netip.MustParseAddr("2001:db8:1:2:ffff::9"), 4, untilMidnight)
	allow(org, netip.MustParseAddr("2001:db8:1:2:ffff::9"), 3)
	allow(org, netip.MustParseAddr("2001:db8:1:3::1"), 10)

	// Refused events are the day's rejected events in the usage.
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	today := dayStart(now)
	usage, err := s.Usage(ctx, org, today, today)
	if err != nil || len(usage) != 1 || usage[0].RejectedEvents != 1+1+4 || usage[0].Events != 0 {
		t.Fatalf("usage = %+v, %v; want 6 rejected events and none stored", usage, err)
	}

	// The next UTC day, the address has its budget again.
	now = today.AddDate(0, 0, 1)
	allow(org, a, 10)
	refuse(org, a, 1, 24*time.Hour)
	if n := s.quotas.addrs.spent.len(); n != 1 {
		t.Fatalf("the new day holds %d pairs, want only today's one", n)
	}
}

// A full table of address budgets forgets its least recently used pair to
// make room: a new address is never refused because others spent theirs.
func TestAddressBudgetsForgetLeastRecentlyUsed(t *testing.T) {
	q := newQuotas(10)
	q.addrs = newAddrBudgets(10, 3)
	org := uuid.New()
	quota := Quota{EventsPerSecond: 1000, EventsPerMonth: 1_000_000}
	now := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	for i := 1; i <= 3; i++ {
		if d := q.allowEvents(org, addr(i), 10, quota, now); !d.Allowed {
			t.Fatalf("address %d: %+v", i, d)
		}
	}
	if d := q.allowEvents(org, addr(1), 1, quota, now); d.Allowed {
		t.Fatal("address 1 over its budget allowed")
	}
	// Address 1 was just looked at: address 2 is the least recently used.
	if d := q.allowEvents(org, addr(4), 10, quota, now); !d.Allowed {
		t.Fatalf("a new address with the table full: %+v, want allowed", d)
	}
	if n := q.addrs.spent.len(); n != 3 {
		t.Fatalf("the table holds %d pairs, want its capacity of 3", n)
	}
	if d := q.allowEvents(org, addr(2), 10, quota, now); !d.Allowed {
		t.Fatalf("the forgotten address 2: %+v, want allowed from zero", d)
	}
	for _, i := range []int{1, 4, 2} {
		if d := q.allowEvents(org, addr(i), 1, quota, now); d.Allowed {
			t.Fatalf("address %d, held and over its budget, allowed", i)
		}
	}
}
