package enrich

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestVisitorIDsDependOnDaySiteIPAndAgent(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	day1 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := day1
	a := NewSalts(db, slog.New(slog.DiscardHandler))
	a.now = func() time.Time { return clock }
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	siteA, siteB := uuid.New(), uuid.New()
	ip := netip.MustParseAddr("203.0.113.7")
	const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

	id := func(s *Salts, at time.Time, site uuid.UUID, ip netip.Addr, ua string) uint64 {
		t.Helper()
		v, ok := s.VisitorID(at, site, ip, ua)
		if !ok {
			t.Fatalf("no salt for %s", at.Format(time.DateOnly))
		}
		return v
	}
	morning := id(a, day1, siteA, ip, ua)
	if evening := id(a, day1.Add(12*time.Hour), siteA, ip, ua); evening != morning {
		t.Fatal("same visitor, same day, same site: ids differ")
	}
	if id(a, day1, siteB, ip, ua) == morning {
		t.Fatal("another site got the same visitor id")
	}
	if id(a, day1, siteA, netip.MustParseAddr("203.0.113.8"), ua) == morning || id(a, day1, siteA, ip, ua+" ") == morning {
		t.Fatal("another address or user agent got the same visitor id")
	}

	// A second node loads the same salt and computes the same ids.
	b := NewSalts(db, slog.New(slog.DiscardHandler))
	b.now = func() time.Time { return clock }
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if id(b, day1, siteA, ip, ua) != morning {
		t.Fatal("two nodes disagree on a visitor id")
	}

	// The next day brings a new salt and a new id.
	clock = day1.Add(24 * time.Hour)
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if id(a, clock, siteA, ip, ua) == morning {
		t.Fatal("the next day kept the visitor id")
	}

	// Two days later, the first day's salt is gone from ClickHouse.
	clock = day1.Add(48 * time.Hour)
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.DropExpired(ctx); err != nil {
		t.Fatal(err)
	}
	var days []string
	rows, err := db.Query(ctx, "SELECT DISTINCT toString(day) AS d FROM salts ORDER BY d")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d string
		_ = rows.Scan(&d)
		days = append(days, d)
	}
	rows.Close()
	if len(days) != 2 || days[0] != "2026-11-24" || days[1] != "2026-11-25" {
		t.Fatalf("salts kept for %v, want only 2026-11-24 and 2026-11-25", days)
	}
	if _, ok := a.VisitorID(day1, siteA, ip, ua); ok {
		t.Fatal("a dropped day's salt still computes ids")
	}
}

// TestTheDaysSaltIsReadyWhenItBegins: the salt of a UTC day is made and
// loaded SaltAhead before the day begins, so that the events received in its
// first moments get visitor ids (not 0, which counts no visitor and no visit)
// before the next check, and every node computes the same ones.
func TestTheDaysSaltIsReadyWhenItBegins(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	midnight := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	site, ip := uuid.New(), netip.MustParseAddr("203.0.113.9")
	clock := midnight.Add(-SaltAhead - time.Minute)
	a := NewSalts(db, slog.New(slog.DiscardHandler))
	a.now = func() time.Time { return clock }
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.VisitorID(midnight, site, ip, "ua"); ok {
		t.Fatalf("the salt of %s exists %s before its day", midnight.Format(time.DateOnly), SaltAhead+time.Minute)
	}
	// The check that falls within SaltAhead of midnight makes it.
	clock = midnight.Add(-SaltAhead + time.Second)
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first, ok := a.VisitorID(midnight.Add(time.Second), site, ip, "ua")
	if !ok {
		t.Fatalf("at %s, %s before midnight, the next day's salt is not loaded: its first events get no visitor id", clock.Format(time.TimeOnly), SaltAhead-time.Second)
	}
	// A node that starts after midnight uses the same salt.
	b := NewSalts(db, slog.New(slog.DiscardHandler))
	b.now = func() time.Time { return midnight.Add(time.Minute) }
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.VisitorID(midnight.Add(time.Minute), site, ip, "ua"); got != first {
		t.Fatal("a node that started after midnight computes another visitor id for the day")
	}
}

func TestConcurrentNodesAgreeOnTheDaysSalt(t *testing.T) {
	db := chtest.Open(t)
	now := time.Date(2026, 11, 24, 0, 0, 1, 0, time.UTC)
	nodes := make([]*Salts, 4)
	errs := make(chan error, len(nodes))
	for i := range nodes {
		nodes[i] = NewSalts(db, slog.New(slog.DiscardHandler))
		nodes[i].now = func() time.Time { return now }
		go func() { errs <- nodes[i].Load(context.Background()) }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ip := netip.MustParseAddr("198.51.100.1")
	site := uuid.New()
	want, _ := nodes[0].VisitorID(now, site, ip, "ua")
	for i, n := range nodes {
		if got, _ := n.VisitorID(now, site, ip, "ua"); got != want {
			t.Fatalf("node %d computes another visitor id than node 0", i)
		}
	}
}

func TestSessionsEndAfterThirtyIdleMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSessions(0, 0)
		site := uuid.New()
		start := time.Now()
		first := s.Touch(site, 1, start)
		if s.Touch(site, 1, start.Add(29*time.Minute)) != first {
			t.Fatal("an event 29 minutes later started a new visit")
		}
		if s.Touch(site, 1, start.Add(58*time.Minute)) != first {
			t.Fatal("activity every 29 minutes must keep one visit")
		}
		if s.Touch(site, 1, start.Add(50*time.Minute)) != first {
			t.Fatal("a late event must stay in the open visit")
		}
		second := s.Touch(site, 1, start.Add(88*time.Minute))
		if second == first {
			t.Fatal("30 idle minutes did not end the visit")
		}
		if s.Touch(site, 2, start) == first || s.Touch(uuid.New(), 1, start) == first {
			t.Fatal("another visitor or site shares a session id")
		}

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if n := s.Open(); n != 0 {
			t.Fatalf("%d visits still open two idle hours later", n)
		}
		cancel()
		<-done
	})
}

func TestSessionsStayWithinTheirBound(t *testing.T) {
	s := NewSessions(time.Minute, 100)
	site := uuid.New()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i := range 1000 {
		s.Touch(site, uint64(i), now)
	}
	if s.Open() != 100 || s.Overflowed() != 900 {
		t.Fatalf("open %d overflowed %d, want 100 and 900", s.Open(), s.Overflowed())
	}
	// Overflowed visitors still get stable ids within the period.
	a := s.Touch(site, 500, now.Add(time.Second))
	if b := s.Touch(site, 500, now.Add(2*time.Second)); a != b {
		t.Fatal("an overflowed visitor's session id changed within the period: " + strconv.FormatUint(a, 10))
	}
}
