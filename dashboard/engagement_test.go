package dashboard

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb"
)

// engagementFixture is a UTC site whose visits send engagement events (the
// trackers' visible time and scroll depth of a page), custom events and
// pageviews, all on 2026-10-20 (times UTC):
//
//	A visitor 1, Google: / 10:00, engagement of / 10:03 {ms 30000, scroll 80} → a bounce
//	B visitor 2, (direct): / 11:00, engagement of / 11:01 {10000, 40}, /pricing 11:01,
//	  engagement of /pricing 11:05 {20000, 100}, Signup 11:06, engagement of /pricing
//	  11:07 {scroll 60, ms 5000: the page hidden twice, the keys in the other order}
//	C visitor 3, Google: /pricing 12:00, engagement of /pricing 12:02 {60000, 30}, stored twice
//	D visitor 4: an engagement of / at 13:00 {120000, 90} alone in its session (the page was
//	  left after the session timeout)
//	E visitor 5, Twitter: /docs 14:00, Signup 14:02, /pricing 14:03, Outbound Link 14:04
type engagementFixture struct {
	*queryFixture
	e   authtest.Tenant
	key string
}

var day1020 = []string{"2026-10-20", "2026-10-20"}

func newEngagementFixture(t *testing.T) *engagementFixture {
	t.Helper()
	return newEngagementFixtureAfter(t, func(*chdb.DB) {})
}

// newEngagementFixtureAfter calls before once the database is ready and
// then stores the data set.
func newEngagementFixtureAfter(t *testing.T, before func(*chdb.DB)) *engagementFixture {
	t.Helper()
	f := &engagementFixture{queryFixture: newQueryFixture(t)}
	before(f.db)
	f.e = authtest.NewTenant(t, f.store, "e.example")
	var err error
	if _, f.key, err = f.store.CreateAPIKey(context.Background(), f.e.Org.ID, "read", []auth.Scope{auth.ScopeRead}, f.e.Owner.ID); err != nil {
		t.Fatal(err)
	}
	pg := func(at, path string, visitor, session uint64, source string) qEvent {
		return qEvent{at: at, typ: "page", page: path, visitor: visitor, session: session, source: source}
	}
	track := func(at, name, path string, visitor, session uint64) qEvent {
		return qEvent{at: at, typ: "track", name: name, page: path, visitor: visitor, session: session}
	}
	eng := func(at, path string, visitor, session uint64, keys, values []string) qEvent {
		return qEvent{at: at, typ: "track", name: "engagement", page: path, visitor: visitor, session: session, propKeys: keys, propValues: values}
	}
	ms := []string{"ms", "scroll"}
	twice := eng("2026-10-20 12:02", "/pricing", 3, 13, ms, []string{"60000", "30"})
	twice.id = uuid.New()
	insertEvents(t, f.db, f.e.Site,
		pg("2026-10-20 10:00", "/", 1, 11, "Google"),
		eng("2026-10-20 10:03", "/", 1, 11, ms, []string{"30000", "80"}),
		pg("2026-10-20 11:00", "/", 2, 12, "(direct)"),
		eng("2026-10-20 11:01", "/", 2, 12, ms, []string{"10000", "40"}),
		pg("2026-10-20 11:01", "/pricing", 2, 12, "(direct)"),
		eng("2026-10-20 11:05", "/pricing", 2, 12, ms, []string{"20000", "100"}),
		track("2026-10-20 11:06", "Signup", "/pricing", 2, 12),
		eng("2026-10-20 11:07", "/pricing", 2, 12, []string{"scroll", "ms"}, []string{"60", "5000"}),
		pg("2026-10-20 12:00", "/pricing", 3, 13, "Google"),
		twice,
		eng("2026-10-20 13:00", "/", 4, 14, ms, []string{"120000", "90"}),
		pg("2026-10-20 14:00", "/docs", 5, 15, "Twitter"),
		track("2026-10-20 14:02", "Signup", "/docs", 5, 15),
		pg("2026-10-20 14:03", "/pricing", 5, 15, "Twitter"),
		track("2026-10-20 14:04", "Outbound Link", "/pricing", 5, 15),
	)
	insertEvents(t, f.db, f.e.Site, twice)
	return f
}

func (f *engagementFixture) ask(t *testing.T, body map[string]any) []row {
	t.Helper()
	body["site_id"] = f.e.Site.ID.String()
	if body["date_range"] == nil {
		body["date_range"] = day1020
	}
	status, raw := f.postRaw(t, "/api/v1/query", f.key, body, "")
	if status != 200 {
		t.Fatalf("query %v: %d %s", body, status, raw)
	}
	var r Result
	remarshal(t, jsonRaw(raw), &r)
	return rowsOf(r)
}

// jsonRaw lets remarshal decode bytes that are already JSON.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }

// sqlAnswer runs a question written as plain SQL over the site's events
// (EVENTS stands for them: the site's stored rows of the day, bots left out)
// and rounds its metric columns as the query API rounds the metrics named.
// Its first dims columns are strings, the rest numbers; rows come in the
// SQL's order.
func sqlAnswer(t *testing.T, db *chdb.DB, site auth.Site, dims int, metrics []string, q string) []row {
	t.Helper()
	events := fmt.Sprintf("(SELECT * FROM events WHERE tenant_id = toUUID('%s') AND site_id = toUUID('%s') AND toDate(ts) = '2026-10-20' AND is_bot = 0)", site.OrgID, site.ID)
	rows, err := db.Query(context.Background(), strings.ReplaceAll(q, "EVENTS", events))
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		r := row{Dims: make([]string, dims), Metrics: make([]float64, len(metrics))}
		var dest []any
		for i := range r.Dims {
			dest = append(dest, &r.Dims[i])
		}
		for i := range r.Metrics {
			dest = append(dest, &r.Metrics[i])
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for i, m := range metrics {
			scale := 1.0
			switch m {
			case "bounce_rate", "conversion_rate":
				scale = 10
			case "views_per_visit":
				scale = 100
			}
			r.Metrics[i] = math.Round(r.Metrics[i]*scale) / scale
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sqlCase is a question to the query API, the plain SQL over the events
// (EVENTS) that answers it, and the answer worked out by hand from the
// fixture's data (nil: the SQL's answer stands).
type sqlCase struct {
	name string
	body map[string]any
	dims int
	sql  string
	want []row
}

// checkPhases asks each question with the visits merged from the events,
// then again after a Finalizer pass has written October 2026 into
// sessions_final and rollup_days: each time the API must answer as the SQL
// does, and the SQL as worked out by hand.
func (f *engagementFixture) checkPhases(t *testing.T, tests []sqlCase) {
	t.Helper()
	for _, phase := range []string{"merged", "finalized"} {
		if phase == "finalized" {
			months, err := NewFinalizer(f.db, FinalizerConfig{}).Pass(context.Background())
			if err != nil || !slices.Contains(months, 202610) {
				t.Fatalf("finalizer wrote %v, %v; want October 2026", months, err)
			}
		}
		for _, tt := range tests {
			t.Run(phase+"/"+tt.name, func(t *testing.T) {
				metrics := tt.body["metrics"].([]string)
				sql := sqlAnswer(t, f.db, f.e.Site, tt.dims, metrics, tt.sql)
				if tt.want != nil && !reflect.DeepEqual(sql, tt.want) {
					t.Fatalf("the SQL answers %v, the worked-out answer is %v: the test is wrong", sql, tt.want)
				}
				if got := f.ask(t, tt.body); !reflect.DeepEqual(got, sql) {
					t.Errorf("the API answers %v\nthe SQL answers  %v", got, sql)
				}
			})
		}
	}
}

// TestEngagementIsNotAnInteraction: engagement events do not end a bounce,
// make a visit or a visitor, count as events, or show as custom events or
// goals; they are the time on page and scroll depth of the pages.
func TestEngagementIsNotAnInteraction(t *testing.T) {
	f := newEngagementFixture(t)
	// Each question as plain SQL over the events: an interaction is any
	// event but an engagement event; a visit is a session with one.
	visits := "SELECT session_id, any(visitor_id) AS visitor, countIf(type = 'page') AS pv, count() AS n, toUInt32(max(ts)) - toUInt32(min(ts)) AS dur" +
		" FROM (SELECT DISTINCT event_id, session_id, visitor_id, type, ts FROM EVENTS WHERE name != 'engagement') GROUP BY session_id"
	pages := "SELECT session_id, pathname, sum(ms) AS ms, max(scroll) AS scroll FROM (SELECT DISTINCT event_id, session_id, pathname," +
		" toFloat64(prop_values[indexOf(prop_keys, 'ms')]) AS ms, toFloat64(prop_values[indexOf(prop_keys, 'scroll')]) AS scroll" +
		" FROM EVENTS WHERE name = 'engagement') GROUP BY session_id, pathname"
	tests := []sqlCase{
		{"a visit's metrics leave engagement out",
			map[string]any{"metrics": []string{"visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration", "views_per_visit"}},
			0, "SELECT toFloat64(uniqExact(visitor)), toFloat64(count()), toFloat64(sum(pv)), toFloat64(sum(n)), 100 * countIf(pv = 1 AND n = 1) / count(), avg(dur), sum(pv) / count() FROM (" + visits + ")",
			[]row{{[]string{}, []float64{4, 4, 6, 9, 50, 150, 1.5}}}},
		{"bounce rate by source",
			map[string]any{"metrics": []string{"visits", "bounce_rate"}, "dimensions": []string{"visit:source"}, "order_by": [][]string{{"visit:source", "asc"}}},
			1, "SELECT src, toFloat64(count()), 100 * countIf(pv = 1 AND n = 1) / count() FROM (" + visits + ") ANY INNER JOIN (SELECT session_id, argMin(source, ts) AS src FROM EVENTS WHERE type = 'page' GROUP BY session_id) USING session_id GROUP BY src ORDER BY src",
			[]row{{[]string{"(direct)"}, []float64{1, 0}}, {[]string{"Google"}, []float64{2, 100}}, {[]string{"Twitter"}, []float64{1, 0}}}},
		{"custom events and their conversion rates",
			map[string]any{"metrics": []string{"visitors", "events", "conversion_rate"}, "dimensions": []string{"event:name"}, "filters": []any{[]any{"is_not", "event:name", []string{"pageview"}}}},
			1, "SELECT name, toFloat64(uniqExact(visitor_id)) AS v, toFloat64(uniqExact(event_id)), 100 * v / (SELECT uniqExact(visitor_id) FROM EVENTS WHERE name != 'engagement') FROM EVENTS WHERE type = 'track' AND name != 'engagement' GROUP BY name ORDER BY v DESC, name",
			[]row{{[]string{"Signup"}, []float64{2, 2, 50}}, {[]string{"Outbound Link"}, []float64{1, 1, 25}}}},
		{"goals: every event name's conversion rate",
			map[string]any{"metrics": []string{"conversion_rate"}, "dimensions": []string{"event:name"}},
			1, "SELECT name, 100 * uniqExact(visitor_id) / (SELECT uniqExact(visitor_id) FROM EVENTS WHERE name != 'engagement') AS c FROM EVENTS WHERE name != 'engagement' GROUP BY name ORDER BY c DESC, name",
			[]row{{[]string{"pageview"}, []float64{100}}, {[]string{"Signup"}, []float64{50}}, {[]string{"Outbound Link"}, []float64{25}}}},
		{"pages with time on page and scroll depth",
			map[string]any{"metrics": []string{"visitors", "pageviews", "time_on_page", "scroll_depth"}, "dimensions": []string{"event:page"}, "order_by": [][]string{{"event:page", "asc"}}},
			1, "SELECT pathname, toFloat64(uniqExactIf(visitor_id, name != 'engagement')), toFloat64(uniqExactIf(event_id, type = 'page')), t, s FROM EVENTS ANY LEFT JOIN" +
				" (SELECT pathname, sum(ms) / count() / 1000 AS t, avg(scroll) AS s FROM (" + pages + ") GROUP BY pathname) USING pathname WHERE name != 'engagement' GROUP BY pathname, t, s ORDER BY pathname",
			[]row{{[]string{"/"}, []float64{2, 2, 53, 70}}, {[]string{"/docs"}, []float64{1, 1, 0, 0}}, {[]string{"/pricing"}, []float64{3, 3, 43, 65}}}},
		{"the site's time on page and scroll depth",
			map[string]any{"metrics": []string{"time_on_page", "scroll_depth"}},
			0, "SELECT sum(ms) / count() / 1000, avg(scroll) FROM (" + pages + ")",
			[]row{{[]string{}, []float64{49, 68}}}},
		{"time on page of the visits from Google",
			map[string]any{"metrics": []string{"time_on_page", "scroll_depth"}, "dimensions": []string{"event:page"}, "filters": []any{[]any{"is", "visit:source", []string{"Google"}}}, "order_by": [][]string{{"event:page", "asc"}}},
			1, "SELECT pathname, sum(ms) / count() / 1000, avg(scroll) FROM (" + pages + ") WHERE session_id IN (SELECT session_id FROM EVENTS WHERE type = 'page' AND source = 'Google') GROUP BY pathname ORDER BY pathname",
			[]row{{[]string{"/"}, []float64{30, 80}}, {[]string{"/pricing"}, []float64{60, 30}}}},
	}
	f.checkPhases(t, tests)
}

// TestEventFilterSelectsVisits: a report filtered by a custom event shows
// the visits and visitors that did it, their pages and sources, and the
// conversions, not the few "pageviews" of the event itself.
func TestEventFilterSelectsVisits(t *testing.T) {
	f := newEngagementFixture(t)
	signup := []any{[]any{"is", "event:name", []string{"Signup"}}}
	// The visits with a Signup, and their interactions.
	converted := "SELECT DISTINCT event_id, session_id, visitor_id, type, name, pathname, source, ts FROM EVENTS WHERE name != 'engagement'" +
		" AND session_id IN (SELECT session_id FROM EVENTS WHERE name = 'Signup')"
	allVisitors := "(SELECT uniqExact(visitor_id) FROM EVENTS WHERE name != 'engagement')"
	// Each visit's source: that of its first pageview.
	sources := "SELECT session_id, any(visitor_id) AS visitor, argMin(source, ts) AS src FROM EVENTS WHERE type = 'page' GROUP BY session_id"
	tests := []sqlCase{
		{"top stats: the converted visits, the conversions and the conversion rate",
			map[string]any{"metrics": []string{"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "events", "conversion_rate"}, "filters": signup},
			0, "SELECT toFloat64(uniqExact(visitor_id)), toFloat64(uniqExact(session_id)), toFloat64(countIf(type = 'page')), countIf(type = 'page') / uniqExact(session_id)," +
				" (SELECT 100 * countIf(pv = 1 AND n = 1) / count() FROM (SELECT countIf(type = 'page') AS pv, count() AS n FROM (" + converted + ") GROUP BY session_id))," +
				" (SELECT avg(d) FROM (SELECT toUInt32(max(ts)) - toUInt32(min(ts)) AS d FROM (" + converted + ") GROUP BY session_id)), toFloat64(countIf(name = 'Signup')), 100 * uniqExact(visitor_id) / " + allVisitors + " FROM (" + converted + ")",
			[]row{{[]string{}, []float64{2, 2, 4, 2, 0, 300, 2, 50}}}},
		{"pages: the pages the converted visits viewed",
			map[string]any{"metrics": []string{"visitors", "pageviews"}, "dimensions": []string{"event:page"}, "filters": signup, "order_by": [][]string{{"event:page", "asc"}}},
			1, "SELECT pathname, toFloat64(uniqExact(visitor_id)), toFloat64(count()) FROM (" + converted + ") WHERE type = 'page' GROUP BY pathname ORDER BY pathname",
			[]row{{[]string{"/"}, []float64{1, 1}}, {[]string{"/docs"}, []float64{1, 1}}, {[]string{"/pricing"}, []float64{2, 2}}}},
		{"pages: time on page in the converted visits",
			map[string]any{"metrics": []string{"time_on_page", "scroll_depth"}, "dimensions": []string{"event:page"}, "filters": signup, "order_by": [][]string{{"event:page", "asc"}}},
			1, "SELECT pathname, sum(ms) / count() / 1000, avg(scroll) FROM (SELECT session_id, pathname, sum(ms) AS ms, max(scroll) AS scroll FROM (SELECT DISTINCT event_id, session_id, pathname," +
				" toFloat64(prop_values[indexOf(prop_keys, 'ms')]) AS ms, toFloat64(prop_values[indexOf(prop_keys, 'scroll')]) AS scroll FROM EVENTS WHERE name = 'engagement'" +
				" AND session_id IN (SELECT session_id FROM EVENTS WHERE name = 'Signup')) GROUP BY session_id, pathname) GROUP BY pathname ORDER BY pathname",
			[]row{{[]string{"/"}, []float64{10, 40}}, {[]string{"/pricing"}, []float64{25, 100}}}},
		{"sources of the converted visits, with their conversion rates",
			map[string]any{"metrics": []string{"visitors", "conversion_rate"}, "dimensions": []string{"visit:source"}, "filters": signup, "order_by": [][]string{{"visit:source", "asc"}}},
			1, "SELECT src, v, 100 * v / b FROM (SELECT src, toFloat64(uniqExact(visitor_id)) AS v FROM (" + converted + ") ANY INNER JOIN (" + sources + ") USING session_id GROUP BY src)" +
				" ANY INNER JOIN (SELECT src, uniqExact(visitor) AS b FROM (" + sources + ") GROUP BY src) USING src ORDER BY src",
			[]row{{[]string{"(direct)"}, []float64{1, 100}}, {[]string{"Twitter"}, []float64{1, 100}}}},
		{"custom events: the goal's conversions and conversion rate",
			map[string]any{"metrics": []string{"visitors", "events", "conversion_rate"}, "dimensions": []string{"event:name"}, "filters": append(slices.Clone(signup), []any{"is_not", "event:name", []string{"pageview", "engagement"}})},
			1, "SELECT name, toFloat64(uniqExact(visitor_id)) AS v, toFloat64(count()), 100 * v / " + allVisitors + " FROM (" + converted + ") WHERE name = 'Signup' GROUP BY name",
			[]row{{[]string{"Signup"}, []float64{2, 2, 50}}}},
		{"visits without a Signup",
			map[string]any{"metrics": []string{"visits", "pageviews"}, "filters": []any{[]any{"is_not", "event:name", []string{"Signup"}}}},
			0, "SELECT toFloat64(uniqExact(session_id)), toFloat64(countIf(type = 'page')) FROM (SELECT DISTINCT event_id, session_id, type FROM EVENTS WHERE name != 'engagement'" +
				" AND session_id NOT IN (SELECT session_id FROM EVENTS WHERE name = 'Signup'))",
			[]row{{[]string{}, []float64{2, 2}}}},
	}
	f.checkPhases(t, tests)
}

// TestEngagementRefusals: what has no meaning is refused with its reason.
func TestEngagementRefusals(t *testing.T) {
	f := newEngagementFixture(t)
	for _, tt := range []struct {
		name, path string
		body       map[string]any
		field      string
	}{
		{"time on page by event name", "/api/v1/query", map[string]any{"metrics": []string{"time_on_page"}, "dimensions": []string{"event:name"}}, "dimensions[0]"},
		{"scroll depth by a property", "/api/v1/query", map[string]any{"metrics": []string{"scroll_depth"}, "dimensions": []string{"event:props:ms"}}, "dimensions[0]"},
		{"a funnel step of engagement", "/api/v1/funnel", map[string]any{"steps": []any{map[string]string{"page": "/"}, map[string]string{"event": "engagement"}}}, "steps[1].event"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.body["site_id"] = f.e.Site.ID.String()
			tt.body["date_range"] = day1020
			status, body := f.post(t, tt.path, f.key, tt.body)
			if status != 400 || body["field"] != tt.field || body["error"] == "" {
				t.Fatalf("status %d %v, want 400 naming %s", status, body, tt.field)
			}
		})
	}
}

// TestMigrationRebuildsVisitsWithoutEngagement: visits stored by the view of
// migration 0005, which counted engagement and non-interactive events, and
// the Finalizer's tables written from them, answer right once migration 0012
// has run, before the Finalizer's next pass and after it.
func TestMigrationRebuildsVisitsWithoutEngagement(t *testing.T) {
	ms, err := chdb.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := newEngagementFixtureAfter(t, func(db *chdb.DB) {
		// The view as migration 0005 made it.
		old := ms[4].Statements[1]
		if ms[4].Name != "sessions" || !strings.HasPrefix(old, "CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_mv") {
			t.Fatalf("migration 5 statement 2 is not the sessions view: %s", old)
		}
		for _, q := range []string{"DROP TABLE sessions_mv", old} {
			if err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	})
	// A visit of the last hours, which the Finalizer keeps in
	// sessions_recent once it has ended: a pageview, its engagement and a
	// non-interactive custom event.
	now := time.Now().UTC().Truncate(time.Minute)
	recent := []string{now.Add(-4 * time.Hour).Format(time.RFC3339), now.Format(time.RFC3339)}
	insertEvents(t, f.db, f.e.Site,
		qEvent{at: now.Add(-3 * time.Hour).Format("2006-01-02 15:04"), typ: "page", page: "/", visitor: 7, session: 17, source: "Google"},
		qEvent{at: now.Add(-3*time.Hour + time.Minute).Format("2006-01-02 15:04"), typ: "track", name: "engagement", page: "/", visitor: 7, session: 17,
			propKeys: []string{"ms", "scroll"}, propValues: []string{"60000", "50"}},
		qEvent{at: now.Add(-3*time.Hour + 2*time.Minute).Format("2006-01-02 15:04"), typ: "track", name: "Video Autoplay", page: "/", visitor: 7, session: 17, nonInteractive: true})
	pass := func() {
		t.Helper()
		if _, err := NewFinalizer(f.db, FinalizerConfig{}).Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	top := []string{"visitors", "visits", "events", "bounce_rate", "visit_duration"}
	ask := func(dateRange any) []float64 {
		return f.ask(t, map[string]any{"metrics": top, "date_range": dateRange})[0].Metrics
	}
	// Passes until the Finalizer's tables answer for October: a month
	// written in the same second as its last insert still counts as changed.
	for deadline := time.Now().Add(30 * time.Second); ; {
		pass()
		st, err := readFinalState(ctx, f.db)
		if err != nil {
			t.Fatal(err)
		}
		if w := st.watermark(); w.After(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("October stays unfinalized")
		}
	}
	// The old visits: engagement and non-interactive events ended bounces,
	// lengthened visits and made a visit of their own. (events counts the
	// stored events, not the visits' events, so it is right already.)
	if got := ask(day1020); !reflect.DeepEqual(got, []float64{5, 5, 9, 0, 192}) {
		t.Fatalf("before the migration the day answers %v; the old view's visits were not made", got)
	}
	if got := ask(recent); !reflect.DeepEqual(got, []float64{1, 1, 2, 0, 120}) {
		t.Fatalf("before the migration the last hours answer %v; the old view's visit was not made", got)
	}
	if m := ms[11]; m.Name != "sessions_interactions" {
		t.Fatalf("migration 12 is %s, not the rebuild of the visits", m.Name)
	}
	for i, q := range ms[11].Statements {
		if err := f.db.Exec(ctx, q); err != nil {
			t.Fatalf("migration 12 statement %d: %v", i+1, err)
		}
	}
	want := sqlAnswer(t, f.db, f.e.Site, 0, top, "SELECT toFloat64(uniqExact(visitor)), toFloat64(count()), toFloat64(sum(n)), 100 * countIf(pv = 1 AND n = 1) / count(), avg(dur) FROM ("+
		"SELECT session_id, any(visitor_id) AS visitor, countIf(type = 'page') AS pv, count() AS n, toUInt32(max(ts)) - toUInt32(min(ts)) AS dur"+
		" FROM (SELECT DISTINCT event_id, session_id, visitor_id, type, ts FROM EVENTS WHERE name != 'engagement') GROUP BY session_id)")
	if !reflect.DeepEqual(want, []row{{[]string{}, []float64{4, 4, 9, 50, 150}}}) {
		t.Fatalf("the SQL answers %v: the test is wrong", want)
	}
	for _, phase := range []string{"before the next pass", "after it"} {
		if phase == "after it" {
			pass()
		}
		if got := ask(day1020); !reflect.DeepEqual(got, want[0].Metrics) {
			t.Errorf("%s the day answers %v, the SQL %v", phase, got, want[0].Metrics)
		}
		if got := ask(recent); !reflect.DeepEqual(got, []float64{1, 1, 2, 100, 0}) {
			t.Errorf("%s the last hours answer %v, want one visit, a bounce, with two events", phase, got)
		}
	}
}
