package auth

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestEventRateBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQuotas()
		org := uuid.New()
		quota := Quota{EventsPerSecond: 10, EventsPerMonth: 1_000_000, MaxConnections: 1}
		for i := range 10 {
			if d := q.allowEvents(org, 1, quota, time.Now()); !d.Allowed {
				t.Fatalf("event %d of a full bucket refused: %+v", i+1, d)
			}
		}
		d := q.allowEvents(org, 1, quota, time.Now())
		if d.Allowed || d.Reason != ReasonEventsPerSecond || d.RetryAfter != 100*time.Millisecond {
			t.Fatalf("11th event in the same instant = %+v, want refused with 100ms", d)
		}
		time.Sleep(d.RetryAfter)
		if d := q.allowEvents(org, 1, quota, time.Now()); !d.Allowed {
			t.Fatalf("after RetryAfter: %+v", d)
		}
		// Another tenant has its own bucket.
		if d := q.allowEvents(uuid.New(), 10, quota, time.Now()); !d.Allowed {
			t.Fatalf("another org refused: %+v", d)
		}
		// A batch larger than the burst passes on a full bucket and then
		// leaves a debt that takes its time to repay.
		time.Sleep(time.Second)
		if d := q.allowEvents(org, 25, quota, time.Now()); !d.Allowed {
			t.Fatalf("large batch on a full bucket: %+v", d)
		}
		if d := q.allowEvents(org, 1, quota, time.Now()); d.Allowed || d.RetryAfter != 1600*time.Millisecond {
			t.Fatalf("after a large batch: %+v, want refused for 1.6s", d)
		}
		var events, rejected uint64
		for _, c := range q.takePending() {
			events += c.events
			rejected += c.rejected
		}
		if events != 10+1+10+25 || rejected != 2 {
			t.Fatalf("counted %d accepted, %d refused; want 46 and 2", events, rejected)
		}
	})
}

func TestConnectionQuota(t *testing.T) {
	q := newQuotas()
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
	if d := a.AllowEvents(org.ID, 60); !d.Allowed {
		t.Fatalf("60 of 100: %+v", d)
	}
	if d := a.AllowEvents(org.ID, 50); d.Allowed || d.Reason != ReasonEventsPerMonth || d.RetryAfter <= 0 {
		t.Fatalf("110 of 100 on the same node: %+v", d)
	}
	// Node b learns of node a's events once a flushed and b refreshed.
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := a.AllowEvents(org.ID, 41); d.Allowed {
		t.Fatalf("node a forgot its flushed events: %+v", d)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if d := b.AllowEvents(org.ID, 50); d.Allowed {
		t.Fatalf("node b allowed 60+50 of 100: %+v", d)
	}
	if d := b.AllowEvents(org.ID, 40); !d.Allowed {
		t.Fatalf("node b refused 60+40 of 100: %+v", d)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	today := dayStart(time.Now())
	usage, err := b.Usage(ctx, org.ID, today.AddDate(0, 0, -7), today)
	if err != nil {
		t.Fatal(err)
	}
	// Accepted: 60 (a) + 40 (b); refused: 50 + 41 (a) + 50 (b).
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
	if d := s.AllowEvents(org, 7); !d.Allowed {
		t.Fatalf("%+v", d)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	today := dayStart(time.Now())
	usage, err := s.Usage(context.Background(), org, today, today)
	if err != nil || len(usage) != 1 || usage[0].Events != 7 {
		t.Fatalf("usage after shutdown = %+v, %v; want 7 events", usage, err)
	}
}
