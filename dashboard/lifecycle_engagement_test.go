package dashboard

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// The lifecycle deletes engagement events from engagement_events (the copy
// time_on_page and scroll_depth read) wherever it deletes them from events:
// otherwise a retention, an erasure or a deletion of a site's data would
// leave the time a person spent on the pages in the reports.

// engagedWorld is two tenants' sites with visits that send engagement
// events, all on 2026-10-20 (UTC):
//
//	site a, S11 visitor 1: / 10:00, its engagement {ms 30000, scroll 80} (before identify),
//	  /pricing 10:01 as user u-1, its engagement {10000, 50} as u-1
//	site a, S12 visitor 2: / 11:00, its engagement {60000, 40}
//	site b (another tenant), S11 visitor 1, user u-1: / 10:00, its engagement {5000, 10}
type engagedWorld struct {
	db    *chdb.DB
	store *auth.Store
	a, b  auth.Site
	// ids of the engagement events by who sent them.
	u1Visit, other, bEngaged []uuid.UUID
}

func newEngagedWorld(t *testing.T) *engagedWorld {
	t.Helper()
	w := &engagedWorld{db: chtest.Open(t)}
	w.store = authtest.Store(t, w.db, auth.Config{})
	w.a = authtest.NewTenant(t, w.store, "engaged-a.test").Site
	w.b = authtest.NewTenant(t, w.store, "engaged-b.test").Site
	ms := []string{"ms", "scroll"}
	eng := func(at, path string, visitor, session uint64, user string, values ...string) qEvent {
		return qEvent{id: uuid.New(), at: at, typ: "track", name: "engagement", page: path, visitor: visitor, session: session, user: user, propKeys: ms, propValues: values}
	}
	pg := func(at, path string, visitor, session uint64, user string) qEvent {
		return qEvent{at: at, typ: "page", page: path, visitor: visitor, session: session, user: user, source: "Google"}
	}
	e1, e2 := eng("2026-10-20 10:00", "/", 1, 11, "", "30000", "80"), eng("2026-10-20 10:01", "/pricing", 1, 11, "u-1", "10000", "50")
	e3 := eng("2026-10-20 11:00", "/", 2, 12, "", "60000", "40")
	eb := eng("2026-10-20 10:00", "/", 1, 11, "u-1", "5000", "10")
	insertEvents(t, w.db, w.a,
		pg("2026-10-20 10:00", "/", 1, 11, ""), e1,
		pg("2026-10-20 10:01", "/pricing", 1, 11, "u-1"), e2,
		pg("2026-10-20 11:00", "/", 2, 12, ""), e3)
	insertEvents(t, w.db, w.b, pg("2026-10-20 10:00", "/", 1, 11, "u-1"), eb)
	w.u1Visit, w.other, w.bEngaged = []uuid.UUID{e1.id, e2.id}, []uuid.UUID{e3.id}, []uuid.UUID{eb.id}
	return w
}

// engagedIDs returns the ids of site's rows in engagement_events, sorted.
func engagedIDs(t *testing.T, db *chdb.DB, site auth.Site) []uuid.UUID {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT DISTINCT event_id FROM engagement_events WHERE tenant_id = toUUID(?) AND site_id = toUUID(?)",
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
	slices.SortFunc(out, func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) })
	return out
}

func sortedIDs(ids ...uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) })
	return out
}

// engagedAnswer asks the query API's engine for site's time on page and
// scroll depth on the days of dateRange.
func engagedAnswer(t *testing.T, db *chdb.DB, site auth.Site, dateRange string) []float64 {
	t.Helper()
	ctx := context.Background()
	e := NewEngine(db, Config{})
	q, err := e.ParseQuery(ctx, Request{SiteID: site.ID.String(), Metrics: []string{"time_on_page", "scroll_depth"}, DateRange: json.RawMessage(dateRange)},
		site, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return res.Results[0].Metrics
}

// engagedSQL is time on page and scroll depth as plain SQL over the stored
// events of 2026-10-20 (sqlAnswer's EVENTS): the mean of the page visits'
// summed times and deepest scrolls.
const engagedSQL = "SELECT if(count() = 0, 0, sum(ms) / count() / 1000), if(count() = 0, 0, avg(scroll)) FROM (SELECT session_id, pathname, sum(ms) AS ms, max(scroll) AS scroll FROM (" +
	"SELECT DISTINCT event_id, session_id, pathname, toFloat64(prop_values[indexOf(prop_keys, 'ms')]) AS ms, toFloat64(prop_values[indexOf(prop_keys, 'scroll')]) AS scroll" +
	" FROM EVENTS WHERE name = 'engagement') GROUP BY session_id, pathname)"

// checkEngaged compares the API's time on page and scroll depth of
// 2026-10-20 with engagedSQL and with the answer worked out by hand.
func checkEngaged(t *testing.T, db *chdb.DB, site auth.Site, want []float64) {
	t.Helper()
	sql := sqlAnswer(t, db, site, 0, []string{"time_on_page", "scroll_depth"}, engagedSQL)
	if !reflect.DeepEqual(sql[0].Metrics, want) {
		t.Fatalf("the SQL answers %v, the worked-out answer is %v: the test is wrong", sql[0].Metrics, want)
	}
	if got := engagedAnswer(t, db, site, `["2026-10-20", "2026-10-20"]`); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: the API answers time on page and scroll depth %v, the stored events %v", site.Domain, got, want)
	}
}

func TestLifecycleEraseDeletesEngagementEvents(t *testing.T) {
	w := newEngagedWorld(t)
	ctx := context.Background()
	checkEngaged(t, w.db, w.a, []float64{33, 57}) // (30 + 10 + 60) / 3 s, (80 + 50 + 40) / 3 %

	l := NewLifecycle(w.db, w.store, LifecycleConfig{Logger: slog.New(slog.DiscardHandler)})
	d, err := l.Erase(ctx, w.a, Subject{UserID: "u-1"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = l.Wait(ctx, w.a, d, 60*time.Second); err != nil || !d.Done() {
		t.Fatalf("wait = %+v, %v", d, err)
	}
	if !slices.ContainsFunc(d.Mutations, func(m Mutation) bool { return m.Table == "engagement_events" }) {
		t.Errorf("mutations = %+v; none deletes from engagement_events", d.Mutations)
	}
	// u-1's visit goes, with the engagement of its page viewed before identify.
	if got, want := engagedIDs(t, w.db, w.a), sortedIDs(w.other...); !slices.Equal(got, want) {
		t.Errorf("site a keeps engagement events %v, want only visitor 2's %v", got, want)
	}
	checkEngaged(t, w.db, w.a, []float64{60, 40})
	if got, want := engagedIDs(t, w.db, w.b), sortedIDs(w.bEngaged...); !slices.Equal(got, want) {
		t.Errorf("another tenant's site has engagement events %v, want %v", got, want)
	}
	checkEngaged(t, w.db, w.b, []float64{5, 10})
}

func TestLifecycleDeleteSiteDataDeletesEngagementEvents(t *testing.T) {
	w := newEngagedWorld(t)
	ctx := context.Background()
	l := NewLifecycle(w.db, w.store, LifecycleConfig{Logger: slog.New(slog.DiscardHandler)})
	d, err := l.DeleteSiteData(ctx, w.a)
	if err != nil {
		t.Fatal(err)
	}
	if d, err = l.Wait(ctx, w.a, d, 60*time.Second); err != nil || !d.Done() {
		t.Fatalf("wait = %+v, %v", d, err)
	}
	if got := engagedIDs(t, w.db, w.a); len(got) != 0 {
		t.Errorf("site a keeps engagement events %v after its data was deleted", got)
	}
	checkEngaged(t, w.db, w.a, []float64{0, 0})
	if got, want := engagedIDs(t, w.db, w.b), sortedIDs(w.bEngaged...); !slices.Equal(got, want) {
		t.Errorf("another tenant's site has engagement events %v, want %v", got, want)
	}
	checkEngaged(t, w.db, w.b, []float64{5, 10})
}

func TestLifecycleRetentionDeletesEngagementEvents(t *testing.T) {
	db := chtest.Open(t)
	s := authtest.Store(t, db, auth.Config{})
	site := authtest.NewTenant(t, s, "engaged-thirty.test").Site
	setRetention(t, s, &site, 30, "")
	// On June 15 the site keeps May 16 onwards: March goes whole, May 10
	// by a mutation, May 20 stays.
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	var ids []uuid.UUID
	for i, ev := range []struct{ at, ms, scroll string }{
		{"2026-03-10 12:00", "40000", "90"},
		{"2026-05-10 12:00", "70000", "20"},
		{"2026-05-20 12:00", "10000", "50"},
	} {
		at := ev.at
		e := qEvent{id: uuid.New(), at: at, typ: "track", name: "engagement", page: "/", visitor: 1, session: uint64(100 + i),
			propKeys: []string{"ms", "scroll"}, propValues: []string{ev.ms, ev.scroll}}
		insertEvents(t, db, site, qEvent{at: at, typ: "page", page: "/", visitor: 1, session: uint64(100 + i)}, e)
		ids = append(ids, e.id)
	}
	rep, err := newTestLifecycle(db, s, 0).Enforce(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Dropped, "engagement_events/202603") {
		t.Errorf("dropped %v; want engagement_events/202603 among them", rep.Dropped)
	}
	waitMutations(t, db)
	if got, want := engagedIDs(t, db, site), sortedIDs(ids[2]); !slices.Equal(got, want) {
		t.Errorf("engagement events kept %v, want only May 20's %v", got, want)
	}
	if got, want := engagedAnswer(t, db, site, `["2026-03-01", "2026-06-15"]`), []float64{10, 50}; !reflect.DeepEqual(got, want) {
		t.Errorf("time on page and scroll depth = %v, want %v: the one page visit kept", got, want)
	}
}
