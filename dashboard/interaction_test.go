package dashboard

import (
	"context"
	"strings"
	"testing"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb"
)

// newNonInteractiveFixture is a UTC site whose visits send non-interactive
// custom events (Plausible's "interactive": false), all on 2026-10-20 (UTC):
//
//	V1 visitor 1, Google: / 10:00, Video Autoplay (non-interactive) 10:04, engagement
//	  of / 10:05 {60000, 50} → a bounce of 0 s
//	V2 visitor 2, (direct): / 11:00, /pricing 11:02, Video Autoplay (non-interactive)
//	  11:10 → 2 pageviews, 120 s
//	V3 visitor 3, Twitter: /docs 12:00, Signup 12:03 → 180 s
//	V4 visitor 1 again: Video Autoplay (non-interactive) 13:00, alone in its session
//	  (after the session timeout) → no visit
func newNonInteractiveFixture(t *testing.T) *engagementFixture {
	t.Helper()
	f := &engagementFixture{queryFixture: newQueryFixture(t)}
	f.e = authtest.NewTenant(t, f.store, "n.example")
	var err error
	if _, f.key, err = f.store.CreateAPIKey(context.Background(), f.e.Org.ID, "read", []auth.Scope{auth.ScopeRead}, f.e.Owner.ID); err != nil {
		t.Fatal(err)
	}
	pg := func(at, path string, visitor, session uint64, source string) qEvent {
		return qEvent{at: at, typ: "page", page: path, visitor: visitor, session: session, source: source}
	}
	autoplay := func(at, path string, visitor, session uint64) qEvent {
		return qEvent{at: at, typ: "track", name: "Video Autoplay", page: path, visitor: visitor, session: session, nonInteractive: true}
	}
	insertEvents(t, f.db, f.e.Site,
		pg("2026-10-20 10:00", "/", 1, 21, "Google"),
		autoplay("2026-10-20 10:04", "/", 1, 21),
		qEvent{at: "2026-10-20 10:05", typ: "track", name: "engagement", page: "/", visitor: 1, session: 21,
			propKeys: []string{"ms", "scroll"}, propValues: []string{"60000", "50"}},
		pg("2026-10-20 11:00", "/", 2, 22, "(direct)"),
		pg("2026-10-20 11:02", "/pricing", 2, 22, "(direct)"),
		autoplay("2026-10-20 11:10", "/pricing", 2, 22),
		pg("2026-10-20 12:00", "/docs", 3, 23, "Twitter"),
		qEvent{at: "2026-10-20 12:03", typ: "track", name: "Signup", page: "/docs", visitor: 3, session: 23},
		autoplay("2026-10-20 13:00", "/", 1, 24),
	)
	return f
}

// TestNonInteractiveEventsAreCustomEventsButNoInteractions: an event sent
// with "interactive": false does not end a bounce, lengthen a visit or make
// one, as an engagement event does not; but it is a custom event, listed
// and counted as a conversion.
func TestNonInteractiveEventsAreCustomEventsButNoInteractions(t *testing.T) {
	f := newNonInteractiveFixture(t)
	// Each question as plain SQL over the events: a visit is a session with
	// an interaction (neither an engagement nor a non-interactive event);
	// events, custom events and goals are every event but engagement.
	visits := "SELECT session_id, any(visitor_id) AS visitor, countIf(type = 'page') AS pv, count() AS n, toUInt32(max(ts)) - toUInt32(min(ts)) AS dur" +
		" FROM (SELECT DISTINCT event_id, session_id, visitor_id, type, ts FROM EVENTS WHERE name != 'engagement' AND non_interactive = 0) GROUP BY session_id"
	counted := "(SELECT DISTINCT event_id, session_id, visitor_id, type, name, ts FROM EVENTS WHERE name != 'engagement')"
	allVisitors := "(SELECT uniqExact(visitor) FROM (" + visits + "))"
	autoplay := []any{[]any{"is", "event:name", []string{"Video Autoplay"}}}
	tests := []sqlCase{
		{"top stats",
			map[string]any{"metrics": []string{"visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration", "views_per_visit"}},
			0, "SELECT toFloat64(uniqExact(visitor)), toFloat64(count()), toFloat64(sum(pv)), toFloat64((SELECT count() FROM " + counted + ")), 100 * countIf(pv = 1 AND n = 1) / count(), avg(dur), sum(pv) / count() FROM (" + visits + ")",
			[]row{{[]string{}, []float64{3, 3, 4, 8, 33.3, 100, 1.33}}}},
		{"events by day",
			map[string]any{"metrics": []string{"events"}, "dimensions": []string{"time:day"}},
			1, "SELECT toString(toDate(ts)) AS d, toFloat64(count()) FROM " + counted + " GROUP BY d ORDER BY d",
			[]row{{[]string{"2026-10-20"}, []float64{8}}}},
		{"custom events and their conversion rates",
			map[string]any{"metrics": []string{"visitors", "events", "conversion_rate"}, "dimensions": []string{"event:name"}, "filters": []any{[]any{"is_not", "event:name", []string{"pageview"}}}},
			1, "SELECT name, toFloat64(uniqExact(visitor_id)) AS v, toFloat64(count()), 100 * v / " + allVisitors + " FROM " + counted + " WHERE type = 'track' GROUP BY name ORDER BY v DESC, name",
			[]row{{[]string{"Video Autoplay"}, []float64{2, 3, 66.7}}, {[]string{"Signup"}, []float64{1, 1, 33.3}}}},
		{"filtered by the non-interactive goal",
			map[string]any{"metrics": []string{"visitors", "visits", "events", "conversion_rate", "bounce_rate", "visit_duration"}, "filters": autoplay},
			0, "SELECT toFloat64(uniqExact(visitor)), toFloat64(count()), toFloat64((SELECT count() FROM " + counted + " WHERE name = 'Video Autoplay'))," +
				" 100 * uniqExact(visitor) / " + allVisitors + ", 100 * countIf(pv = 1 AND n = 1) / count(), avg(dur)" +
				" FROM (" + visits + ") WHERE session_id IN (SELECT session_id FROM EVENTS WHERE name = 'Video Autoplay')",
			[]row{{[]string{}, []float64{2, 2, 3, 66.7, 50, 60}}}},
	}
	f.checkPhases(t, tests)
}

// TestSessionsViewMakesVisitsOfInteractions: the sessions view, and the
// refill of the visits stored before it, keep the events interactionSQL
// describes, so visits and builder.go agree on what an interaction is.
func TestSessionsViewMakesVisitsOfInteractions(t *testing.T) {
	ms, err := chdb.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var view, refill string
	for _, m := range ms {
		for _, s := range m.Statements {
			switch {
			case strings.HasPrefix(s, "CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_mv"):
				view, refill = s, ""
			case strings.HasPrefix(s, "INSERT INTO sessions ("):
				refill = s
			}
		}
	}
	where := "WHERE session_id != 0 AND is_bot = 0 AND " + interactionSQL + "\n"
	if !strings.Contains(view, where) || !strings.Contains(refill, where) {
		t.Fatalf("the last sessions view and its refill do not keep %q:\n%s\n%s", where, view, refill)
	}
}
