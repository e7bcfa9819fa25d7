package dashboard

import (
	"context"
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
