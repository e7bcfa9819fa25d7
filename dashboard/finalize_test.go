package dashboard

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestFinalizerAtTheWatermarkAndForLateEvents checks that a visit is counted
// once whichever side of the watermark it started on, and that a late event
// of a finalized visit reaches sessions_final at the next pass.
func TestFinalizerAtTheWatermarkAndForLateEvents(t *testing.T) {
	f := newQueryFixture(t)
	ctx := context.Background()
	var now time.Time
	if err := f.db.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	watermark := now.UTC().Truncate(24 * time.Hour).Add(-finalizeLag)
	at := func(d time.Duration) string { return watermark.Add(d).Format("2006-01-02 15:04") }
	// A visit that starts 10 minutes before the watermark and ends 10
	// minutes after it, and one that starts 5 minutes after it.
	insertEvents(t, f.db, f.a.Site,
		qEvent{at: at(-10 * time.Minute), typ: "page", page: "/before", visitor: 20, session: 200, source: "Google"},
		qEvent{at: at(10 * time.Minute), typ: "page", page: "/after", visitor: 20, session: 200, source: "(direct)"},
		qEvent{at: at(5 * time.Minute), typ: "page", page: "/later", visitor: 21, session: 201, source: "Bing"},
	)
	fin := NewFinalizer(f.db, FinalizerConfig{})
	if _, err := fin.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	around := []string{watermark.Add(-time.Hour).Format(time.RFC3339), watermark.Add(time.Hour).Format(time.RFC3339)}
	q := map[string]any{"metrics": []string{"visits", "pageviews", "visit_duration"}, "dimensions": []string{"visit:entry_page"}, "date_range": around}
	want := []row{{[]string{"/before"}, []float64{1, 2, 1200}}, {[]string{"/later"}, []float64{1, 1, 0}}}
	if got := rowsOf(f.query(t, q)); !reflect.DeepEqual(got, want) {
		t.Fatalf("across the watermark: got %v, want %v", got, want)
	}

	// An event of the finalized visit S2 (Oct 25) arrives late: the visit is
	// no longer a bounce, at once (October is read from sessions until it is
	// written again) and after the next pass has rewritten October.
	insertEvents(t, f.db, f.a.Site, qEvent{at: "2026-10-25 09:03", typ: "page", page: "/late", visitor: 2, session: 102, source: "(direct)", country: "FR", device: "Mobile"})
	top := map[string]any{"metrics": []string{"visits", "pageviews", "bounce_rate"}, "date_range": days2526}
	want = []row{{[]string{}, []float64{4, 9, 0}}}
	if got := rowsOf(f.query(t, top)); !reflect.DeepEqual(got, want) {
		t.Fatalf("right after the late event: got %v, want 4 visits, 9 pageviews, no bounce", got)
	}
	months, err := fin.Pass(ctx)
	if err != nil || !slices.Contains(months, 202610) {
		t.Fatalf("second pass wrote %v, %v; want October 2026 again", months, err)
	}
	if got := rowsOf(f.query(t, top)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the second pass: got %v, want 4 visits, 9 pageviews, no bounce", got)
	}
}

// TestRecentAndOpenVisits checks the visits since the watermark: those that
// had ended at the Finalizer's pass (sessions_recent) and those still open,
// or changed after it, merged at query time, each counted once and as it is
// now, whichever days sessions_recent holds.
func TestRecentAndOpenVisits(t *testing.T) {
	f := newQueryFixture(t)
	ctx := context.Background()
	var now time.Time
	if err := f.db.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	now = now.UTC().Truncate(time.Minute)
	today := now.Truncate(24 * time.Hour)
	watermark := today.Add(-finalizeLag)
	at := func(t time.Time) string { return t.Format("2006-01-02 15:04") }
	insertEvents(t, f.db, f.a.Site,
		// Ended long before the pass.
		qEvent{at: at(watermark.Add(time.Hour)), typ: "page", page: "/one", visitor: 31, session: 301},
		qEvent{at: at(watermark.Add(time.Hour + 5*time.Minute)), typ: "page", page: "/one-b", visitor: 31, session: 301},
		// Still open at the pass.
		qEvent{at: at(now.Add(-20 * time.Minute)), typ: "page", page: "/two", visitor: 32, session: 302},
		// Ended at the pass; an event comes later (below).
		qEvent{at: at(now.Add(-50 * time.Minute)), typ: "page", page: "/three", visitor: 33, session: 303},
		// Ended at the pass, today if now is past 00:45 UTC.
		qEvent{at: at(now.Add(-45 * time.Minute)), typ: "page", page: "/seven", visitor: 37, session: 307},
		// Started yesterday; an event comes later (below), today if now
		// is past 00:30 UTC.
		qEvent{at: at(today.Add(-2 * time.Hour)), typ: "page", page: "/six", visitor: 36, session: 306},
	)
	fin := NewFinalizer(f.db, FinalizerConfig{})
	passUntilSettled(t, fin)
	var recent uint64
	if err := f.db.QueryRow(ctx, "SELECT count() FROM sessions_recent WHERE session_id IN (301, 303, 306, 307)").Scan(&recent); err != nil || recent != 4 {
		t.Fatalf("sessions_recent holds %d of the 4 ended visits (%v)", recent, err)
	}
	// The events after the pass are today's: one on the watermark's day
	// would make its month no longer current (daySpan), so queries would
	// rightly read that month from sessions instead, which is
	// TestFinalizerAtTheWatermarkAndForLateEvents's case. Early in the UTC
	// day, now-30 min is yesterday, so such an event moves to midnight.
	late := func(ago time.Duration) time.Time {
		if t := now.Add(-ago); t.After(today) {
			return t
		}
		return today
	}
	insertEvents(t, f.db, f.a.Site,
		qEvent{at: at(late(5 * time.Minute)), typ: "page", page: "/two-b", visitor: 32, session: 302},
		qEvent{at: at(late(30 * time.Minute)), typ: "page", page: "/three-b", visitor: 33, session: 303},
		qEvent{at: at(late(30 * time.Minute)), typ: "page", page: "/six-b", visitor: 36, session: 306},
	)
	// A merge of every part of sessions, old rows and new, changes no
	// finalized visit: the months stay current (see check).
	if err := f.db.Exec(ctx, "OPTIMIZE TABLE sessions FINAL"); err != nil {
		t.Fatal(err)
	}
	since := func(from time.Time) map[string]any {
		return map[string]any{"metrics": []string{"visits", "pageviews", "visitors"}, "dimensions": []string{"visit:entry_page"},
			"date_range": []string{from.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)}, "order_by": [][]string{{"visit:entry_page", "asc"}}}
	}
	sinceWatermark := []row{{[]string{"/one"}, []float64{1, 2, 1}}, {[]string{"/seven"}, []float64{1, 1, 1}}, {[]string{"/six"}, []float64{1, 2, 1}},
		{[]string{"/three"}, []float64{1, 2, 1}}, {[]string{"/two"}, []float64{1, 2, 1}}}
	sinceToday := []row{}
	for _, r := range sinceWatermark {
		switch {
		case r.Dims[0] == "/seven" && !now.Add(-45*time.Minute).Before(today),
			r.Dims[0] == "/three" && !now.Add(-50*time.Minute).Before(today),
			r.Dims[0] == "/two" && !now.Add(-20*time.Minute).Before(today):
			sinceToday = append(sinceToday, r)
		}
	}
	e := NewEngine(f.db, Config{})
	check := func(when string, markers bool) {
		t.Helper()
		q, err := e.ParseQuery(ctx, Request{SiteID: f.a.Site.ID.String(), Metrics: []string{"visits"}, DateRange: json.RawMessage(`"today"`)}, f.a.Site, now)
		if err != nil {
			t.Fatal(err)
		}
		if !q.watermark.Equal(watermark) || q.openSince.IsZero() != !markers {
			t.Fatalf("%s: the queries' watermark is %s (want %s) and they merge visits with events since %s (markers: %v)", when, q.watermark, watermark, q.openSince, markers)
		}
		if got := rowsOf(f.query(t, since(watermark))); !reflect.DeepEqual(got, sinceWatermark) {
			t.Errorf("%s, since the watermark: got %v, want %v", when, got, sinceWatermark)
		}
		if got := rowsOf(f.query(t, since(today))); !reflect.DeepEqual(got, sinceToday) {
			t.Errorf("%s, since today: got %v, want %v", when, got, sinceToday)
		}
	}
	check("after the pass", true)
	day := func(t time.Time) uint32 { return uint32(t.Year()*10000 + int(t.Month())*100 + t.Day()) }
	// Today's partition, and so its marker, gone (as in the first minute
	// of a day, before a pass has written it): the visits with events
	// today are merged.
	if err := f.db.Exec(ctx, "ALTER TABLE sessions_recent DROP PARTITION ?", day(today)); err != nil {
		t.Fatal(err)
	}
	check("without today's partition", true)
	// The watermark's day gone instead (a pass has moved the watermark
	// but not written sessions_recent yet): every visit is merged.
	if _, err := fin.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a second pass", true)
	if err := f.db.Exec(ctx, "ALTER TABLE sessions_recent DROP PARTITION ?", day(watermark)); err != nil {
		t.Fatal(err)
	}
	check("without the watermark's partition", false)
	if err := f.db.Exec(ctx, "TRUNCATE TABLE sessions_recent"); err != nil {
		t.Fatal(err)
	}
	check("without sessions_recent", false)
	// A visit whose events all arrive after their cutoff is in sessions_recent,
	// and in the answers, from the next pass.
	// Early in the UTC day the visit is on the watermark's day, whose month
	// the pass then writes again; passes until one finds nothing to write.
	insertEvents(t, f.db, f.a.Site, qEvent{at: at(now.Add(-3 * time.Hour)), typ: "page", page: "/five", visitor: 35, session: 305})
	passUntilSettled(t, fin)
	sinceWatermark = append([]row{{[]string{"/five"}, []float64{1, 1, 1}}}, sinceWatermark...)
	if !now.Add(-3 * time.Hour).Before(today) {
		sinceToday = append([]row{{[]string{"/five"}, []float64{1, 1, 1}}}, sinceToday...)
	}
	check("after the next pass", true)
}

// passUntilSettled runs passes until one finds no month to write: an
// insert in the second a pass begins counts as after it, so the pass after
// a load may write a month again.
func passUntilSettled(t *testing.T, fin *Finalizer) {
	t.Helper()
	for i := 0; ; i++ {
		months, err := fin.Pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(months) == 0 {
			return
		}
		if i == 5 {
			t.Fatalf("the Finalizer still writes %v after %d passes", months, i)
		}
		time.Sleep(time.Second)
	}
}
