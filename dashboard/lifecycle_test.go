package dashboard

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// lcEvent is one event a lifecycle test stores.
type lcEvent struct {
	site    auth.Site
	ts      time.Time
	session uint64
	visitor uint64
	user    string
	id      uuid.UUID // filled by insertLifecycleEvents
}

// insertLifecycleEvents stores events (the materialized view makes their
// visits) and returns them with their ids.
func insertLifecycleEvents(t *testing.T, db *chdb.DB, evs ...lcEvent) []lcEvent {
	t.Helper()
	ctx := context.Background()
	b, err := db.PrepareBatch(ctx, "INSERT INTO events (tenant_id, site_id, event_id, ts, received_at, type, pathname, visitor_id, session_id, user_id)")
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		e := &evs[i]
		e.id = uuid.New()
		if err := b.Append(e.site.OrgID, e.site.ID, e.id, e.ts, e.ts, "page", "/", e.visitor, e.session, e.user); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// storedEvents returns the ids of site's stored events.
func storedEvents(t *testing.T, db *chdb.DB, site auth.Site) []uuid.UUID {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT DISTINCT event_id FROM events WHERE tenant_id = toUUID(?) AND site_id = toUUID(?)",
		site.OrgID.String(), site.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// storedVisits returns the session ids of site's stored visits.
func storedVisits(t *testing.T, db *chdb.DB, site auth.Site) []uint64 {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT DISTINCT session_id FROM sessions WHERE tenant_id = toUUID(?) AND site_id = toUUID(?) ORDER BY session_id",
		site.OrgID.String(), site.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// idsOf lists the ids of evs, sorted like storedEvents.
func idsOf(evs ...lcEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.id
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// waitMutations waits until ClickHouse has finished every mutation of the
// test database.
func waitMutations(t *testing.T, db *chdb.DB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n uint64
		if err := db.QueryRow(context.Background(), "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mutations still running after 60 s", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// partitions lists table's active partitions.
func partitions(t *testing.T, db *chdb.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = ? AND active ORDER BY partition", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func setRetention(t *testing.T, s *auth.Store, site *auth.Site, days int64, tz string) {
	t.Helper()
	up := auth.SiteUpdate{RetentionDays: &days}
	if tz != "" {
		up.TimeZone = &tz
	}
	st, err := s.UpdateSite(context.Background(), site.ID, up)
	if err != nil {
		t.Fatal(err)
	}
	*site = st
}

func newTestLifecycle(db *chdb.DB, s *auth.Store, maxDays uint32) *Lifecycle {
	return NewLifecycle(db, s, LifecycleConfig{MaxRetentionDays: maxDays, Logger: slog.New(slog.DiscardHandler)})
}

func TestLifecycleDeletesRowsOlderThanEachSitesRetention(t *testing.T) {
	db := chtest.Open(t)
	s := authtest.Store(t, db, auth.Config{})
	a := authtest.NewTenant(t, s, "thirty.test").Site
	b := authtest.NewTenant(t, s, "forever.test").Site
	setRetention(t, s, &a, 30, "Europe/Berlin")
	// now is 12:00 in Berlin on June 15: a keeps May 16 (Berlin) onwards,
	// which starts at 2026-05-15 22:00 UTC.
	now := time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC)
	cut := time.Date(2026, 5, 15, 22, 0, 0, 0, time.UTC)
	times := []time.Time{
		time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), // an older month
		time.Date(2026, 5, 14, 23, 0, 0, 0, time.UTC), // May 15, 01:00 in Berlin
		cut.Add(-time.Second),                         // the last expired second
		cut,                                           // the first kept second
		time.Date(2026, 6, 14, 8, 0, 0, 0, time.UTC),
	}
	var aEvents, bEvents []lcEvent
	for i, ts := range times {
		aEvents = append(aEvents, lcEvent{site: a, ts: ts, session: uint64(100 + i), visitor: 1})
		bEvents = append(bEvents, lcEvent{site: b, ts: ts, session: uint64(100 + i), visitor: 1})
	}
	aEvents = insertLifecycleEvents(t, db, aEvents...)
	bEvents = insertLifecycleEvents(t, db, bEvents...)

	l := newTestLifecycle(db, s, 0)
	rep, err := l.Enforce(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Dropped) != 0 || !slices.Equal(rep.Expired, []uuid.UUID{a.ID}) || len(rep.DeletedSites) != 0 {
		t.Fatalf("report = %+v; want only %s expired and nothing dropped (%s keeps everything)", rep, a.ID, b.ID)
	}
	waitMutations(t, db)

	if got, want := storedEvents(t, db, a), idsOf(aEvents[3:]...); !slices.Equal(got, want) {
		t.Errorf("site with 30 days keeps %v, want the events from the cutoff on %v", got, want)
	}
	// Visits are kept per UTC day: the visit of May 15 (UTC) holds the day
	// the cutoff falls in, so it stays until the next day's pass.
	if got, want := storedVisits(t, db, a), []uint64{102, 103, 104}; !slices.Equal(got, want) {
		t.Errorf("site with 30 days keeps visits %v, want %v", got, want)
	}
	if got, want := storedEvents(t, db, b), idsOf(bEvents...); !slices.Equal(got, want) {
		t.Errorf("site that keeps forever has %v, want all of %v", got, want)
	}
	if got := storedVisits(t, db, b); len(got) != len(times) {
		t.Errorf("site that keeps forever has visits %v, want %d", got, len(times))
	}
	if got := partitions(t, db, "events"); !slices.Equal(got, []string{"202603", "202605", "202606"}) {
		t.Errorf("events partitions = %v; none may be dropped while a site keeps everything", got)
	}

	// Nothing is left to delete: the next pass starts no mutation.
	rep, err = l.Enforce(context.Background(), now)
	if err != nil || !rep.empty() {
		t.Fatalf("second pass = %+v, %v; want nothing to do", rep, err)
	}
	var mutations uint64
	if err := db.QueryRow(context.Background(), "SELECT count() FROM system.mutations WHERE database = currentDatabase()").Scan(&mutations); err != nil {
		t.Fatal(err)
	}
	if mutations != 3 {
		t.Errorf("%d mutations after two passes, want 3 (one per table: events, event_ids, sessions; from the first pass)", mutations)
	}
}

func TestLifecycleDropsMonthsNoSiteKeeps(t *testing.T) {
	db := chtest.Open(t)
	s := authtest.Store(t, db, auth.Config{})
	a := authtest.NewTenant(t, s, "a.test").Site
	b := authtest.NewTenant(t, s, "b.test").Site
	capped := authtest.NewTenant(t, s, "capped.test").Site
	gone := authtest.NewTenant(t, s, "gone.test").Site
	setRetention(t, s, &a, 30, "")
	setRetention(t, s, &b, 60, "America/New_York")
	// capped keeps everything, but the operator allows 90 days: it keeps
	// 2026-03-17 onwards.
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

	var all []lcEvent
	for _, site := range []auth.Site{a, b, capped, gone} {
		for i, ts := range []time.Time{
			time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC),
			time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC),
			time.Date(2026, 3, 16, 12, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 17, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC),
		} {
			all = append(all, lcEvent{site: site, ts: ts, session: uint64(i + 1), visitor: 7})
		}
	}
	all = insertLifecycleEvents(t, db, all...)
	if err := s.DeleteSite(context.Background(), gone.ID); err != nil {
		t.Fatal(err)
	}

	l := newTestLifecycle(db, s, 90)
	rep, err := l.Enforce(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	wantDropped := []string{"events/202601", "events/202602", "event_ids/202601", "event_ids/202602", "sessions/202601", "sessions/202602"}
	if !slices.Equal(rep.Dropped, wantDropped) {
		t.Errorf("dropped %v, want %v (February ends before 2026-03-17, the oldest day any site keeps)", rep.Dropped, wantDropped)
	}
	if !slices.Equal(rep.DeletedSites, []uuid.UUID{gone.ID}) {
		t.Errorf("deleted sites = %v, want %s", rep.DeletedSites, gone.ID)
	}
	waitMutations(t, db)
	for _, table := range []string{"events", "event_ids", "sessions"} {
		if got := partitions(t, db, table); !slices.Equal(got, []string{"202603", "202606"}) {
			t.Errorf("%s partitions = %v, want 202603 and 202606", table, got)
		}
	}
	of := func(site auth.Site) []lcEvent {
		var out []lcEvent
		for _, e := range all {
			if e.site.ID == site.ID && !e.ts.Before(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
				out = append(out, e)
			}
		}
		return out
	}
	// capped's March 16 event is older than 90 days; a and b keep nothing of March.
	if got, want := storedEvents(t, db, capped), idsOf(of(capped)[1:]...); !slices.Equal(got, want) {
		t.Errorf("capped site keeps %v, want %v", got, want)
	}
	for _, site := range []auth.Site{a, b} {
		if got, want := storedEvents(t, db, site), idsOf(of(site)[2:]...); !slices.Equal(got, want) {
			t.Errorf("site %s keeps %v, want only June's %v", site.Domain, got, want)
		}
	}
	if got := storedEvents(t, db, gone); len(got) != 0 {
		t.Errorf("deleted site still has events %v", got)
	}
	if got := storedVisits(t, db, gone); len(got) != 0 {
		t.Errorf("deleted site still has visits %v", got)
	}
}

func TestLifecycleCutoffs(t *testing.T) {
	now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC) // 03:30 in Berlin, just after the DST change
	berlin, _ := time.LoadLocation("Europe/Berlin")
	auckland, _ := time.LoadLocation("Pacific/Auckland")
	tests := []struct {
		name string
		tz   string
		days uint32
		want time.Time
	}{
		{"forever", "UTC", 0, time.Time{}},
		{"one day in UTC keeps yesterday", "UTC", 1, time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)},
		{"a week in Berlin, across the DST change", "Europe/Berlin", 7, time.Date(2026, 3, 22, 0, 0, 0, 0, berlin)},
		{"already tomorrow in Auckland", "Pacific/Auckland", 1, time.Date(2026, 3, 28, 0, 0, 0, 0, auckland)},
		{"unknown zone counts as UTC", "Mars/Olympus", 2, time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := siteCutoff(now, tt.tz, tt.days); !got.Equal(tt.want) {
				t.Fatalf("siteCutoff = %v, want %v", got, tt.want)
			}
		})
	}

	caps := []struct{ site, max, want uint32 }{{0, 0, 0}, {30, 0, 30}, {0, 90, 90}, {30, 90, 30}, {400, 90, 90}}
	for _, c := range caps {
		if got := effectiveRetention(c.site, c.max); got != c.want {
			t.Errorf("effectiveRetention(%d, cap %d) = %d, want %d", c.site, c.max, got, c.want)
		}
	}

	d1, d2 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := oldestKept(nil); ok {
		t.Error("with no live site, oldestKept allows dropping")
	}
	if _, ok := oldestKept(map[uuid.UUID]time.Time{uuid.New(): d1, uuid.New(): {}}); ok {
		t.Error("a site that keeps forever does not block dropping")
	}
	if got, ok := oldestKept(map[uuid.UUID]time.Time{uuid.New(): d1, uuid.New(): d2}); !ok || !got.Equal(d2) {
		t.Errorf("oldestKept = %v %v, want %v", got, ok, d2)
	}
	for p, want := range map[string]time.Time{"202612": time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "202602": d1} {
		if got, ok := monthEnd(p); !ok || !got.Equal(want) {
			t.Errorf("monthEnd(%s) = %v %v, want %v", p, got, ok, want)
		}
	}
	for _, p := range []string{"tuple()", "20261", "202613", "2026-01"} {
		if _, ok := monthEnd(p); ok {
			t.Errorf("monthEnd(%q) accepted a partition that is not a month", p)
		}
	}
}

func TestLifecycleRunsAfterStartDelayThenEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		l := NewLifecycle(nil, nil, LifecycleConfig{Interval: 2 * time.Hour, Logger: slog.New(slog.DiscardHandler)})
		var (
			mu     sync.Mutex
			passes []time.Duration
		)
		seen := func() []time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(passes)
		}
		l.enforce = func(ctx context.Context, now time.Time) (LifecycleReport, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("a pass runs without a deadline")
			}
			mu.Lock()
			defer mu.Unlock()
			passes = append(passes, now.Sub(start))
			if len(passes) == 2 {
				return LifecycleReport{}, errors.New("clickhouse went away") // logged; the job goes on
			}
			return LifecycleReport{}, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()

		time.Sleep(lifecycleStartDelay - time.Second)
		synctest.Wait()
		if got := seen(); len(got) != 0 {
			t.Fatalf("a pass ran %v after start, before the start delay", got[0])
		}
		time.Sleep(3*2*time.Hour + time.Second)
		synctest.Wait()
		want := []time.Duration{lifecycleStartDelay, lifecycleStartDelay + 2*time.Hour, lifecycleStartDelay + 4*time.Hour, lifecycleStartDelay + 6*time.Hour}
		if got := seen(); !slices.Equal(got, want) {
			t.Fatalf("passes at %v, want %v", got, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v, want nil at shutdown", err)
		}
	})
}
