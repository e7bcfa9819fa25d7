package dashboard

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/gofiber/fiber/v2"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// newCompareFixture is a site in tz, with a read key, answering as if asked
// at now (f.now can be changed between queries).
func newCompareFixture(t *testing.T, tz string) *queryFixture {
	t.Helper()
	ctx := context.Background()
	f := &queryFixture{db: chtest.Open(t)}
	f.store = authtest.Store(t, f.db, auth.Config{})
	f.a = authtest.NewTenant(t, f.store, "compare.example")
	var err error
	if f.a.Site, err = f.store.UpdateSite(ctx, f.a.Site.ID, auth.SiteUpdate{TimeZone: &tz}); err != nil {
		t.Fatal(err)
	}
	if _, f.keyA, err = f.store.CreateAPIKey(ctx, f.a.Org.ID, "read", []auth.Scope{auth.ScopeRead}, f.a.Owner.ID); err != nil {
		t.Fatal(err)
	}
	api := NewAPI(NewEngine(f.db, Config{QueriesPerSecond: 1000, QueryBurst: 1000}), f.store, slog.New(slog.NewTextHandler(testLog{t}, nil)))
	api.now = func() time.Time { return f.now }
	f.app = fiber.New()
	api.Register(f.app)
	return f
}

// visit is a visit of two pageviews, five minutes apart, starting at the
// local time at (in loc), by its own visitor.
func visit(t *testing.T, at string, loc *time.Location, n uint64) []qEvent {
	t.Helper()
	start, err := time.ParseInLocation("2006-01-02 15:04", at, loc)
	if err != nil {
		t.Fatal(err)
	}
	utc := func(d time.Duration) string { return start.Add(d).UTC().Format("2006-01-02 15:04") }
	return []qEvent{
		{at: utc(0), typ: "page", page: "/", visitor: n, session: n, source: "(direct)", channel: "Direct", country: "DE", device: "Desktop"},
		{at: utc(5 * time.Minute), typ: "page", page: "/pricing", visitor: n, session: n, source: "(direct)", channel: "Direct", country: "DE", device: "Desktop"},
	}
}

// cmpResult is a query's answer as its JSON reads.
type cmpResult struct {
	Results []Row   `json:"results"`
	Totals  *Totals `json:"totals"`
	Meta    struct {
		DateRange           [2]string  `json:"date_range"`
		IncompleteUntil     string     `json:"incomplete_until"`
		ComparisonDateRange *[2]string `json:"comparison_date_range"`
		Comparison          *struct {
			Mode              string    `json:"mode"`
			DateRange         [2]string `json:"date_range"`
			ChangeUnavailable string    `json:"change_unavailable"`
			FirstData         string    `json:"first_data"`
		} `json:"comparison"`
	} `json:"meta"`
}

// cmpQuery posts a query of the fixture's site.
func cmpQuery(t *testing.T, f *queryFixture, body map[string]any) cmpResult {
	t.Helper()
	body["site_id"] = f.a.Site.ID.String()
	status, raw := f.postRaw(t, "/api/v1/query", f.keyA, body, "")
	if status != 200 {
		t.Fatalf("query %v: %d %s", body, status, raw)
	}
	var r cmpResult
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// plainCounts answers visitors, visits and pageviews of the visits that
// started in [from, to), straight from the events.
func plainCounts(t *testing.T, f *queryFixture, from, to time.Time) []float64 {
	t.Helper()
	var visitors, visits, pageviews uint64
	err := f.db.QueryRow(context.Background(), `
		SELECT uniqExact(visitor), count(), sum(pv) FROM (
			SELECT session_id, any(visitor_id) AS visitor, min(ts) AS started, uniqExactIf(event_id, type = 'page') AS pv
			FROM events WHERE tenant_id = toUUID(@tenant) AND site_id = toUUID(@site) AND is_bot = 0
			GROUP BY session_id
		) WHERE started >= toDateTime(@from) AND started < toDateTime(@to)`,
		clickhouse.Named("tenant", f.a.Org.ID.String()), clickhouse.Named("site", f.a.Site.ID.String()),
		clickhouse.Named("from", uint32(from.Unix())), clickhouse.Named("to", uint32(to.Unix())),
	).Scan(&visitors, &visits, &pageviews)
	if err != nil {
		t.Fatal(err)
	}
	return []float64{float64(visitors), float64(visits), float64(pageviews)}
}

func parseLabels(t *testing.T, r [2]string) (time.Time, time.Time) {
	t.Helper()
	from, err1 := time.Parse(time.RFC3339, r[0])
	to, err2 := time.Parse(time.RFC3339, r[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("range %v: %v %v", r, err1, err2)
	}
	return from, to
}

// TestComparisonComparesTheSameElapsedPart asks for comparisons of ranges
// that have not ended, at moments chosen so that a comparison with the
// whole earlier period, one moved back by a fixed number of days, or one
// that measures the elapsed part in hours rather than by the clock each
// count visits they must not.
func TestComparisonComparesTheSameElapsedPart(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	f := newCompareFixture(t, "Europe/Berlin")
	var evs []qEvent
	n := uint64(0)
	add := func(at ...string) {
		for _, a := range at {
			n++
			evs = append(evs, visit(t, a, berlin, n)...)
		}
	}
	// Local times. The site's data starts long before every comparison.
	add("2025-09-01 12:00")
	// This month on 7 December at 14:00 against 1–7 November until 14:00.
	add("2025-10-31 23:30", "2025-11-01 00:30", "2025-11-03 10:00", "2025-11-07 13:30", "2025-11-07 14:30", "2025-11-20 12:00", "2025-11-30 12:00")
	add("2025-12-02 10:00", "2025-12-07 09:00")
	// Today, 10 December at 14:00, against 9 December until 14:00.
	add("2025-12-09 09:00", "2025-12-09 13:50", "2025-12-09 14:01", "2025-12-09 20:00", "2025-12-10 10:00")
	// 26 October 2026 at 14:00, the day after the clocks went back (25
	// October had 25 hours): until 14:00 on the clock is 15 hours into it.
	add("2026-10-25 13:30", "2026-10-25 14:30", "2026-10-26 13:10")
	// 30 March 2026 at 02:30, the day after the clocks went forward at
	// 02:00 (29 March had no 02:30): until 03:00, when they jumped.
	add("2026-03-29 01:30", "2026-03-29 03:10", "2026-03-30 00:40")
	insertEvents(t, f.db, f.a.Site, evs...)

	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	metrics := []string{"visitors", "visits", "pageviews"}
	tests := []struct {
		name, now, preset string
		wantRange         [2]string
		wantUntil         string
		wantVisits        float64
		grain             string
		bucket            string // a current bucket, and the comparison visits of its match
		bucketVisits      float64
		unmatched         string // a bucket that has no comparison
	}{
		{name: "this month on day 7 against the first 7 days of last month", now: "2025-12-07 14:00", preset: "month",
			wantRange: [2]string{"2025-11-01T00:00:00+01:00", "2025-11-07T14:00:00+01:00"}, wantUntil: "2025-12-07T14:00:00+01:00", wantVisits: 3,
			grain: "day", bucket: "2025-12-07", bucketVisits: 1, unmatched: "2025-12-08"},
		{name: "today at 14:00 against yesterday until 14:00", now: "2025-12-10 14:00", preset: "today",
			wantRange: [2]string{"2025-12-09T00:00:00+01:00", "2025-12-09T14:00:00+01:00"}, wantUntil: "2025-12-10T14:00:00+01:00", wantVisits: 2,
			grain: "hour", bucket: "2025-12-10T13:00:00+01:00", bucketVisits: 1, unmatched: "2025-12-10T14:00:00+01:00"},
		{name: "the day after the clocks went back: until 14:00 by the clock", now: "2026-10-26 14:00", preset: "today",
			wantRange: [2]string{"2026-10-25T00:00:00+02:00", "2026-10-25T14:00:00+01:00"}, wantUntil: "2026-10-26T14:00:00+01:00", wantVisits: 1,
			grain: "hour", bucket: "2026-10-26T13:00:00+01:00", bucketVisits: 1, unmatched: "2026-10-26T15:00:00+01:00"},
		{name: "the day after the clocks went forward: 02:30 did not exist, so until they jumped", now: "2026-03-30 02:30", preset: "today",
			wantRange: [2]string{"2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00"}, wantUntil: "2026-03-30T02:30:00+02:00", wantVisits: 1,
			grain: "hour", bucket: "2026-03-30T01:00:00+02:00", bucketVisits: 1, unmatched: "2026-03-30T02:00:00+02:00"},
	}
	// The same answers from visits merged at query time, and from
	// sessions_final and rollup_days once the Finalizer has written them.
	for _, phase := range []string{"merged", "finalized"} {
		if phase == "finalized" {
			if _, err := NewFinalizer(f.db, FinalizerConfig{}).Pass(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range tests {
			t.Run(phase+"/"+tt.name, func(t *testing.T) {
				f.now = at(tt.now)
				r := cmpQuery(t, f, map[string]any{"metrics": metrics, "date_range": tt.preset,
					"include": map[string]any{"totals": true, "comparison": "previous_period"}})
				if r.Meta.ComparisonDateRange == nil || *r.Meta.ComparisonDateRange != tt.wantRange {
					t.Errorf("meta.comparison_date_range = %v, want %v", r.Meta.ComparisonDateRange, tt.wantRange)
				}
				// The API's numbers are those of a plain SQL over the same
				// ranges.
				from, to := parseLabels(t, r.Meta.DateRange)
				if got, want := r.Totals.Metrics, plainCounts(t, f, from, to); !reflect.DeepEqual(got, want) {
					t.Errorf("current totals = %v, plain SQL says %v", got, want)
				}
				cf, ct := parseLabels(t, tt.wantRange)
				want := plainCounts(t, f, cf, ct)
				if got := r.Totals.Comparison.Metrics; !reflect.DeepEqual(got, want) || got[1] != tt.wantVisits {
					t.Errorf("comparison totals = %v, plain SQL says %v, want %v visits", got, want, tt.wantVisits)
				}
				if c := r.Meta.Comparison; c == nil || c.DateRange != tt.wantRange || c.Mode != "previous_period" || c.ChangeUnavailable != "" {
					t.Errorf("meta.comparison = %+v, want the range %v with changes", c, tt.wantRange)
				}
				if r.Meta.IncompleteUntil != tt.wantUntil {
					t.Errorf("meta.incomplete_until = %q, want %q", r.Meta.IncompleteUntil, tt.wantUntil)
				}
				for i := range metrics {
					cur, prev := r.Totals.Metrics[i], r.Totals.Comparison.Metrics[i]
					ch := r.Totals.Comparison.Change[i]
					if prev == 0 && ch != nil || prev != 0 && (ch == nil || *ch != math.Round((cur-prev)/prev*1000)/10) {
						t.Errorf("change of %s from %v to %v = %v", metrics[i], prev, cur, ch)
					}
				}

				// Time buckets: the partial bucket is matched with the same
				// part of the earlier period, buckets after now with none.
				r = cmpQuery(t, f, map[string]any{"metrics": []string{"visits"}, "date_range": tt.preset, "dimensions": []string{"time:" + tt.grain},
					"include": map[string]any{"comparison": "previous_period", "time_labels": true}})
				seen := 0
				for _, row := range r.Results {
					switch row.Dimensions[0] {
					case tt.bucket:
						seen++
						if row.Comparison == nil || row.Comparison.Metrics[0] != tt.bucketVisits {
							t.Errorf("bucket %s compared with %+v, want %v visits", tt.bucket, row.Comparison, tt.bucketVisits)
						}
					case tt.unmatched:
						seen++
						if row.Comparison != nil {
							t.Errorf("bucket %s (after now) compared with %+v, want no comparison", tt.unmatched, row.Comparison)
						}
					}
				}
				if seen != 2 {
					t.Errorf("buckets %s and %s not both in %+v", tt.bucket, tt.unmatched, r.Results)
				}
			})
		}
	}
}

// TestComparisonWithoutDataIsNotAChange: an earlier period that starts
// before the site's first event gives no change, the reason and the first
// event's time; a real drop to nothing within covered data is −100 %.
func TestComparisonWithoutDataIsNotAChange(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	f := newCompareFixture(t, "Europe/Berlin")
	var evs []qEvent
	for i, at := range []string{"2025-11-07 09:13", "2025-11-19 10:00", "2025-11-19 11:00", "2025-12-01 10:00", "2025-12-05 10:00", "2025-12-06 10:00"} {
		evs = append(evs, visit(t, at, berlin, uint64(i+1))...)
	}
	evs = append(evs, qEvent{at: "2025-10-01 10:00", typ: "page", page: "/", visitor: 99, session: 99, bot: true}) // a bot is not data
	insertEvents(t, f.db, f.a.Site, evs...)
	f.now = time.Date(2025, 12, 6, 13, 0, 0, 0, time.UTC)

	for _, mode := range []string{"previous_period", "year_over_year"} {
		t.Run("30d "+mode, func(t *testing.T) {
			r := cmpQuery(t, f, map[string]any{"metrics": []string{"visitors", "visits", "bounce_rate"}, "date_range": "30d", "dimensions": []string{"time:day"},
				"include": map[string]any{"totals": true, "comparison": mode, "time_labels": true}})
			if tc := r.Totals.Comparison; tc == nil || !reflect.DeepEqual(tc.Change, []*float64{nil, nil, nil}) {
				t.Errorf("totals comparison = %+v, want every change null", tc)
			}
			for _, row := range r.Results {
				if row.Comparison != nil && !reflect.DeepEqual(row.Comparison.Change, []*float64{nil, nil, nil}) {
					t.Errorf("row %v has changes %v", row.Dimensions, row.Comparison.Change)
					break
				}
			}
			if c := r.Meta.Comparison; c == nil || c.ChangeUnavailable != "not_covered" || c.FirstData != "2025-11-07T09:13:00+01:00" {
				t.Errorf("meta.comparison = %+v, want not_covered with the first data 2025-11-07T09:13:00+01:00", c)
			}
		})
	}
	// The comparison's metrics are still what the stored data holds: 6–18
	// November has the visit of 7 November.
	r := cmpQuery(t, f, map[string]any{"metrics": []string{"visits"}, "date_range": []string{"2025-11-19", "2025-12-01"}, "include": map[string]any{"totals": true, "comparison": "previous_period"}})
	if c := r.Meta.Comparison; c == nil || c.ChangeUnavailable != "not_covered" || r.Totals.Comparison.Metrics[0] != 1 || r.Totals.Comparison.Change[0] != nil {
		t.Errorf("19 November to 1 December against the 13 days before = %+v, %+v; want 1 visit, no change, not_covered", c, r.Totals.Comparison)
	}

	// 20 November has no visit, 19 November two: covered, a real −100 %.
	r = cmpQuery(t, f, map[string]any{"metrics": []string{"visits"}, "date_range": []string{"2025-11-20", "2025-11-20"}, "include": map[string]any{"totals": true, "comparison": "previous_period"}})
	if c := r.Meta.Comparison; c == nil || c.ChangeUnavailable != "" || c.FirstData != "" {
		t.Fatalf("meta.comparison = %+v, want a covered comparison", c)
	}
	if ch := r.Totals.Comparison.Change[0]; r.Totals.Metrics[0] != 0 || r.Totals.Comparison.Metrics[0] != 2 || ch == nil || *ch != -100 {
		t.Fatalf("totals = %v vs %+v, want 0 vs 2, -100 %%", r.Totals.Metrics, r.Totals.Comparison)
	}
	if r.Meta.IncompleteUntil != "" {
		t.Errorf("a past day is complete, meta.incomplete_until = %q", r.Meta.IncompleteUntil)
	}

	// A comparison that starts a minute before the first event is not
	// covered; one that starts exactly at it is.
	r = cmpQuery(t, f, map[string]any{"metrics": []string{"visits"}, "date_range": []string{"2025-11-07T09:13:00+01:00", "2025-11-07T09:14:00+01:00"}, "include": map[string]any{"comparison": "previous_period", "totals": true}})
	if c := r.Meta.Comparison; c == nil || c.ChangeUnavailable != "not_covered" || c.DateRange != [2]string{"2025-11-07T09:12:00+01:00", "2025-11-07T09:13:00+01:00"} {
		t.Fatalf("comparison from the minute before the first event = %+v, want not_covered", c)
	}
	r = cmpQuery(t, f, map[string]any{"metrics": []string{"visits"}, "date_range": []string{"2025-11-07T09:14:00+01:00", "2025-11-07T09:15:00+01:00"}, "include": map[string]any{"comparison": "previous_period", "totals": true}})
	if c := r.Meta.Comparison; c == nil || c.ChangeUnavailable != "" || c.DateRange != [2]string{"2025-11-07T09:13:00+01:00", "2025-11-07T09:14:00+01:00"} {
		t.Fatalf("comparison from the first event's minute = %+v, want covered", c)
	}
}

// TestCohortsMarkTheIncompletePeriod: while the range has not ended, the
// retention answer names the period that holds now, whose cells count so far.
func TestCohortsMarkTheIncompletePeriod(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	f := newCompareFixture(t, "Europe/Berlin")
	var evs []qEvent
	for i, at := range []string{"2025-12-01 10:00", "2025-12-07 09:00"} {
		v := visit(t, at, berlin, uint64(i+1))
		for j := range v {
			v[j].user, v[j].visitor = "u1", 1
		}
		evs = append(evs, v...)
	}
	insertEvents(t, f.db, f.a.Site, evs...)
	f.now = time.Date(2025, 12, 7, 13, 0, 0, 0, time.UTC) // 14:00 in Berlin
	for _, tt := range []struct {
		period, dateRange     string
		wantPeriod, wantUntil string
		wantCohort            string
		wantRetained          []uint64
	}{
		{"day", "7d", "2025-12-07", "2025-12-07T14:00:00+01:00", "2025-12-01", []uint64{1, 0, 0, 0, 0, 0, 1}},
		{"week", "7d", "2025-12-01", "2025-12-07T14:00:00+01:00", "2025-12-01", []uint64{1}},
		{"day", "last_month", "", "", "", nil},
	} {
		t.Run(tt.period+" "+tt.dateRange, func(t *testing.T) {
			status, body := f.post(t, "/api/v1/retention", f.keyA, map[string]any{"site_id": f.a.Site.ID, "date_range": tt.dateRange, "period": tt.period})
			if status != 200 {
				t.Fatalf("retention: %d %v", status, body)
			}
			var cr CohortResult
			remarshal(t, body, &cr)
			if cr.Meta.IncompletePeriod != tt.wantPeriod || cr.Meta.IncompleteUntil != tt.wantUntil {
				t.Errorf("meta = %+v, want the incomplete period %q until %q", cr.Meta, tt.wantPeriod, tt.wantUntil)
			}
			if tt.wantCohort != "" && (len(cr.Cohorts) == 0 || cr.Cohorts[0].Cohort != tt.wantCohort || !reflect.DeepEqual(cr.Cohorts[0].Retained, tt.wantRetained)) {
				t.Errorf("cohorts = %+v, want %s retained %v", cr.Cohorts, tt.wantCohort, tt.wantRetained)
			}
		})
	}
}
