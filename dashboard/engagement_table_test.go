package dashboard

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/pulse-analytics/pulse/internal/chdb"
)

// time_on_page and scroll_depth read engagement_events (migration 0014), a
// copy of the engagement events that a materialized view keeps from every
// insert into events. These tests check the copy against the events.

// engagedBySQL is time on page and scroll depth by the events column col
// as plain SQL over the events (sqlAnswer's EVENTS): each engagement event
// once, summed per page visit (visit and page), then the means per value.
func engagedBySQL(col string) string {
	keys := "session_id, pathname"
	if col != "pathname" {
		keys += ", " + col
	}
	return "SELECT " + col + ", sum(ms) / count() / 1000, avg(scroll) FROM (SELECT " + keys + ", sum(ms) AS ms, max(scroll) AS scroll FROM (" +
		"SELECT DISTINCT event_id, " + keys + ", toFloat64(prop_values[indexOf(prop_keys, 'ms')]) AS ms, toFloat64(prop_values[indexOf(prop_keys, 'scroll')]) AS scroll" +
		" FROM EVENTS WHERE name = 'engagement') GROUP BY " + keys + ") GROUP BY " + col + " ORDER BY " + col
}

// TestEngagementViewKeepsEngagementEvents: the view and the back-fill of
// migration 0014 take the events engagementSQL names, no others.
func TestEngagementViewKeepsEngagementEvents(t *testing.T) {
	ms, err := chdb.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var view, fill string
	for _, m := range ms {
		for _, s := range m.Statements {
			switch {
			case strings.HasPrefix(s, "CREATE MATERIALIZED VIEW IF NOT EXISTS engagement_events_mv"):
				view = s
			case strings.HasPrefix(s, "INSERT INTO engagement_events ("):
				fill = s
			}
		}
	}
	where := "FROM events\nWHERE " + engagementSQL
	if !strings.HasSuffix(view, where) || !strings.HasSuffix(fill, where) {
		t.Fatalf("the engagement_events view and its back-fill do not end in %q:\n%s\n%s", where, view, fill)
	}
}

// TestMigrationCopiesStoredEngagementEvents: engagement events stored
// before migration 0014 answer time on page once it has run, run twice as
// two nodes may; later ones arrive through its view.
func TestMigrationCopiesStoredEngagementEvents(t *testing.T) {
	ms, err := chdb.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	m := ms[13]
	if m.Version != 14 || m.Name != "engagement_events" {
		t.Fatalf("migration 14 is %04d_%s, not engagement_events", m.Version, m.Name)
	}
	ctx := context.Background()
	f := newEngagementFixtureAfter(t, func(db *chdb.DB) {
		// The database as it was before migration 0014.
		for _, q := range []string{"DROP TABLE engagement_events_mv", "DROP TABLE engagement_events"} {
			if err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	})
	for range 2 {
		for i, q := range m.Statements {
			if err := f.db.Exec(ctx, q); err != nil {
				t.Fatalf("migration 14 statement %d: %v", i+1, err)
			}
		}
	}
	insertEvents(t, f.db, f.e.Site,
		qEvent{at: "2026-10-20 14:01", typ: "track", name: "engagement", page: "/docs", visitor: 5, session: 15, propKeys: []string{"ms", "scroll"}, propValues: []string{"8000", "20"}})

	metrics := []string{"time_on_page", "scroll_depth"}
	want := []row{{[]string{"/"}, []float64{53, 70}}, {[]string{"/docs"}, []float64{8, 20}}, {[]string{"/pricing"}, []float64{43, 65}}}
	if sql := sqlAnswer(t, f.db, f.e.Site, 1, metrics, engagedBySQL("pathname")); !reflect.DeepEqual(sql, want) {
		t.Fatalf("the SQL answers %v, the worked-out answer is %v: the test is wrong", sql, want)
	}
	got := f.ask(t, map[string]any{"metrics": metrics, "dimensions": []string{"event:page"}, "order_by": [][]string{{"event:page", "asc"}}})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the API answers %v\nthe SQL answers  %v", got, want)
	}
}

// TestEngagementByEveryDimension: time on page and scroll depth answer by
// every dimension they may be broken down by, filtered on it too, so
// engagement_events has every column their statements read; those the
// events carry themselves agree with the events.
func TestEngagementByEveryDimension(t *testing.T) {
	f := newEngagementFixture(t)
	metrics := []string{"time_on_page", "scroll_depth"}
	var dims []string
	for name := range eventDims {
		dims = append(dims, name)
	}
	for name := range visitDims {
		dims = append(dims, name)
	}
	for grain := range timeGrains {
		dims = append(dims, "time:"+grain)
	}
	for _, name := range dims {
		d, err := parseDimension("", name)
		if err != nil {
			t.Fatal(err)
		}
		if d.goal() {
			continue // refused (TestEngagementRefusals)
		}
		t.Run(name, func(t *testing.T) {
			body := map[string]any{"metrics": metrics, "dimensions": []string{name}, "order_by": [][]string{{name, "asc"}}}
			if d.kind != dimTime {
				body["filters"] = []any{[]any{"is_not", name, []string{"(no such value)"}}}
			}
			got := f.ask(t, body)
			if len(got) == 0 {
				t.Fatalf("no rows by %s", name)
			}
			if d.kind == dimTime || d.kind == dimVisit && !d.onEvents {
				return // read from the visits or bucketed: the other tests compare those
			}
			if sql := sqlAnswer(t, f.db, f.e.Site, 1, metrics, engagedBySQL(d.col)); !reflect.DeepEqual(got, sql) {
				t.Errorf("the API answers %v\nthe SQL answers  %v", got, sql)
			}
		})
	}
}
