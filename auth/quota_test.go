package auth

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestEventRateBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQuotas(DefaultAddressEventsPerDay)
		org := uuid.New()
		quota := Quota{EventsPerSecond: 10, EventsPerMonth: 1_000_000, MaxConnections: 1}
		for i := range 10 {
			if d := q.allowEvents(org, netip.Addr{}, 1, quota, time.Now()); !d.Allowed {
				t.Fatalf("event %d of a full bucket refused: %+v", i+1, d)
			}
		}
		d := q.allowEvents(org, netip.Addr{}, 1, quota, time.Now())
		if d.Allowed || d.Reason != ReasonEventsPerSecond || d.RetryAfter != 100*time.Millisecond {
			t.Fatalf("11th event in the same instant = %+v, want refused with 100ms", d)
		}
		time.Sleep(d.RetryAfter)
		if d := q.allowEvents(org, netip.Addr{}, 1, quota, time.Now()); !d.Allowed {
			t.Fatalf("after RetryAfter: %+v", d)
		}
		// Another tenant has its own bucket.
		if d := q.allowEvents(uuid.New(), netip.Addr{}, 10, quota, time.Now()); !d.Allowed {
			t.Fatalf("another org refused: %+v", d)
		}
		// A batch larger than the burst passes on a full bucket and then
		// leaves a debt that takes its time to repay.
		time.Sleep(time.Second)
		if d := q.allowEvents(org, netip.Addr{}, 25, quota, time.Now()); !d.Allowed {
			t.Fatalf("large batch on a full bucket: %+v", d)
		}
		if d := q.allowEvents(org, netip.Addr{}, 1, quota, time.Now()); d.Allowed || d.RetryAfter != 1600*time.Millisecond {
			t.Fatalf("after a large batch: %+v, want refused for 1.6s", d)
		}
		var events, rejected uint64
		for _, c := range q.takePending() {
			events += c.events
			rejected += c.rejected
		}
		// Allowed events are in flight, not usage: usage counts them once stored.
		if events != 0 || rejected != 2 || q.inflight[org] != 10+1+25 {
			t.Fatalf("counted %d stored, %d refused, %d in flight; want 0, 2 and 36", events, rejected, q.inflight[org])
		}
	})
}

// The monthly quota counts the events in flight and the stored ones: an
// allowed event holds its place until it is settled, and then holds it only
// if it was stored (metered).
func TestMonthlyQuotaCountsStoredAndInFlight(t *testing.T) {
	q := newQuotas(DefaultAddressEventsPerDay)
	org := uuid.New()
	now := time.Now()
	q.setMonth(map[uuid.UUID]uint64{org: 30}, now) // stored before, as read from ClickHouse
	quota := Quota{EventsPerSecond: 1000, EventsPerMonth: 100, MaxConnections: 1}
	if d := q.allowEvents(org, netip.Addr{}, 60, quota, now); !d.Allowed {
		t.Fatalf("30 stored + 60: %+v", d)
	}
	if d := q.allowEvents(org, netip.Addr{}, 11, quota, now); d.Allowed || d.Reason != ReasonEventsPerMonth {
		t.Fatalf("30 stored + 60 in flight + 11 = %+v, want refused", d)
	}
	// Of the 60, 40 are stored and 20 were left out as stored already.
	q.meter(org, now, 40)
	q.settle(org, 60)
	if d := q.allowEvents(org, netip.Addr{}, 30, quota, now); !d.Allowed {
		t.Fatalf("30 + 40 stored + 30: %+v", d)
	}
	if d := q.allowEvents(org, netip.Addr{}, 1, quota, now); d.Allowed {
		t.Fatalf("30 + 40 stored + 30 in flight + 1 = %+v, want refused", d)
	}
	q.settle(org, 30) // given up
	q.settle(org, 5)  // more than in flight: nothing left, not a wrap-around
	if d := q.allowEvents(org, netip.Addr{}, 30, quota, now); !d.Allowed || q.inflight[org] != 30 {
		t.Fatalf("after the 30 were given up: %+v, %d in flight", d, q.inflight[org])
	}
	// Stored events of last month count in its usage, not in this month's quota.
	q.settle(org, 30)
	q.meter(org, monthStart(now).Add(-time.Hour), 25)
	if d := q.allowEvents(org, netip.Addr{}, 30, quota, now); !d.Allowed {
		t.Fatalf("last month's events held this month's place: %+v", d)
	}
	p := q.takePending()
	if got := p[usageKey{org, dayStart(now)}].events; got != 40 {
		t.Fatalf("today's usage = %d, want the 40 stored", got)
	}
	if got := p[usageKey{org, dayStart(monthStart(now).Add(-time.Hour))}].events; got != 25 {
		t.Fatalf("last month's usage = %d, want 25", got)
	}
}

func TestConnectionQuota(t *testing.T) {
	q := newQuotas(DefaultAddressEventsPerDay)
	org := uuid.New()
	r1, d1 := q.acquire(org, 2)
	_, d2 := q.acquire(org, 2)
	noop, d3 := q.acquire(org, 2)
	if !d1.Allowed || !d2.Allowed || d3.Allowed || d3.Reason != ReasonConnections || d3.RetryAfterSeconds() != 5 {
		t.Fatalf("decisions %+v %+v %+v", d1, d2, d3)
	}
	noop() // releasing a refused slot frees nothing
	if _, d := q.acquire(org, 2); d.Allowed {
		t.Fatal("a refused connection's release freed a slot")
	}
	r1()
	r1() // twice is harmless
	if _, d := q.acquire(org, 2); !d.Allowed {
		t.Fatal("released slot not reusable")
	}
	if _, d := q.acquire(org, 2); d.Allowed {
		t.Fatal("double release freed two slots")
	}
}

func TestMonthlyQuotaAcrossNodesAndUsage(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	ctx := context.Background()
	a, b := openStore(t, db, cfg), openStore(t, db, cfg)
	// Both nodes' checks happen at one moment of one day: the usage is that
	// day's and the quota that month's, whenever the test runs (on a clock
	// that turned a day or a month during it, the refusals and the days
	// would be others).
	now := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC)
	for _, s := range []*Store{a, b} {
		s.quotas.now = func() time.Time { return now }
		if err := s.Refresh(ctx); err != nil { // the month of now
			t.Fatal(err)
		}
	}
	org, err := a.CreateOrg(ctx, "acme", uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetQuota(ctx, org.ID, Quota{EventsPerSecond: 1000, EventsPerMonth: 100}); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if q := b.QuotaOf(org.ID); q.EventsPerMonth != 100 || q.MaxConnections != DefaultMaxConnections {
		t.Fatalf("quota on node b = %+v", q)
	}
	if d := a.AllowEvents(org.ID, netip.Addr{}, 60); !d.Allowed {
		t.Fatalf("60 of 100: %+v", d)
	}
	if d := a.AllowEvents(org.ID, netip.Addr{}, 50); d.Allowed || d.Reason != ReasonEventsPerMonth || d.RetryAfter <= 0 {
		t.Fatalf("110 of 100 on the same node: %+v", d)
	}
	// The 60 are stored.
	a.MeterStored(org.ID, now, 60)
	a.SettleEvents(org.ID, 60)
	// Node b learns of node a's events once a flushed and b refreshed.
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := a.AllowEvents(org.ID, netip.Addr{}, 41); d.Allowed {
		t.Fatalf("node a forgot its flushed events: %+v", d)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if d := b.AllowEvents(org.ID, netip.Addr{}, 50); d.Allowed {
		t.Fatalf("node b allowed 60+50 of 100: %+v", d)
	}
	if d := b.AllowEvents(org.ID, netip.Addr{}, 40); !d.Allowed {
		t.Fatalf("node b refused 60+40 of 100: %+v", d)
	}
	b.MeterStored(org.ID, now, 40)
	b.SettleEvents(org.ID, 40)
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	today := dayStart(now)
	usage, err := b.Usage(ctx, org.ID, today.AddDate(0, 0, -7), today)
	if err != nil {
		t.Fatal(err)
	}
	// Stored: 60 (a) + 40 (b); refused: 50 + 41 (a) + 50 (b).
	if len(usage) != 1 || !usage[0].Day.Equal(today) || usage[0].Events != 100 || usage[0].RejectedEvents != 141 {
		t.Fatalf("usage = %+v, want one day with 100 events and 141 rejected", usage)
	}
	other, err := b.Usage(ctx, uuid.New(), today.AddDate(0, 0, -7), today)
	if err != nil || len(other) != 0 {
		t.Fatalf("usage of another org = %+v, %v", other, err)
	}
}

func TestRunWritesUsageOnShutdown(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	cfg.UsageFlushInterval = time.Hour // only the final flush can write
	s := openStore(t, db, cfg)
	org := uuid.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stored := time.Now()
	s.MeterStored(org, stored, 7)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	day := dayStart(stored) // the day it was stored on, which is not today once midnight has passed
	usage, err := s.Usage(context.Background(), org, day, day)
	if err != nil || len(usage) != 1 || usage[0].Events != 7 {
		t.Fatalf("usage after shutdown = %+v, %v; want 7 events", usage, err)
	}
}
