package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// qEvent is one event of the fixed data set.
type qEvent struct {
	id                    uuid.UUID
	at                    string // UTC, "2006-01-02 15:04"
	typ, name, page       string
	visitor, session      uint64
	source, channel       string
	country, device, user string
	propKeys, propValues  []string
	bot                   bool
	// nonInteractive is Plausible's "interactive": false.
	nonInteractive bool
}

func insertEvents(t *testing.T, db *chdb.DB, site auth.Site, evs ...qEvent) {
	t.Helper()
	b, err := db.PrepareBatch(context.Background(), "INSERT INTO events (tenant_id, site_id, event_id, ts, received_at, type, name, hostname, pathname, visitor_id, session_id, source, channel, country, device, browser, os, user_id, prop_keys, prop_values, is_bot, non_interactive)")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		ts, err := time.Parse("2006-01-02 15:04", e.at)
		if err != nil {
			t.Fatal(err)
		}
		if e.id == uuid.Nil {
			e.id = uuid.New()
		}
		name := e.name
		if e.typ == "page" {
			name = "pageview"
		}
		var bot, nonInteractive uint8
		if e.bot {
			bot = 1
		}
		if e.nonInteractive {
			nonInteractive = 1
		}
		keys, values := e.propKeys, e.propValues
		if keys == nil {
			keys, values = []string{}, []string{}
		}
		if err := b.Append(site.OrgID, site.ID, e.id, ts, ts, e.typ, name, site.Domain, e.page, e.visitor, e.session,
			e.source, e.channel, e.country, e.device, "Chrome", "Linux", e.user, keys, values, bot, nonInteractive); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// queryFixture is a site in Europe/Berlin with a small set of visits whose
// answers are worked out by hand in the comments below, and a second tenant
// with data that must never show.
type queryFixture struct {
	db         *chdb.DB
	store      *auth.Store
	app        *fiber.App
	a, b       authtest.Tenant
	keyA, keyB string
	ingestKeyA string
	shareA     string
	now        time.Time
}

// The data set (times UTC; Berlin is UTC+2 until 2026-10-25 01:00 UTC, UTC+1 after):
//
//	S0 visitor 5, Oct 23 10:00 (local Oct 23): / — the previous period's only visit
//	S1 visitor 1, user u1, Google/DE/Desktop, Oct 24 22:30 (local Oct 25 00:30):
//	   / 22:30, /pricing 22:35, Signup{plan=pro, revenue=49.5} 22:40 (on /signup), /signup 22:41
//	   → 3 pageviews, 4 events, 660 s, entry /, exit /signup
//	S2 visitor 2, (direct)/FR/Mobile, Oct 25 09:00: / → a bounce
//	S3 visitor 3, user u2, Google/DE/Mobile, Oct 25 23:30 (local Oct 26 00:30):
//	   /blog/a 23:30, /pricing 23:50 (sent twice; S1's Signup is sent twice too) → 2 pageviews, 1200 s
//	S4 visitor 1, user u1, Twitter/DE/Desktop, Oct 26: /pricing 10:00 and
//	   Signup{revenue=10} 10:05 stored first, then /docs 09:58 arrives late
//	   → entry /docs, exit /pricing, 2 pageviews, 3 events, 420 s
//	S9 a bot on Oct 26 12:00 — never counted
//
// Over the local days Oct 25–26: 4 visits, 3 visitors, 8 pageviews, 10
// events, bounce rate 25 %, mean duration 2280/4 = 570 s, 2 views per visit.
func newQueryFixture(t *testing.T) *queryFixture {
	t.Helper()
	ctx := context.Background()
	f := &queryFixture{db: chtest.Open(t), now: time.Date(2026, 10, 27, 12, 0, 0, 0, time.UTC)}
	f.store = authtest.Store(t, f.db, auth.Config{})
	f.a = authtest.NewTenant(t, f.store, "a.example")
	f.b = authtest.NewTenant(t, f.store, "b.example")
	berlin := "Europe/Berlin"
	var err error
	if f.a.Site, err = f.store.UpdateSite(ctx, f.a.Site.ID, auth.SiteUpdate{TimeZone: &berlin}); err != nil {
		t.Fatal(err)
	}
	if _, f.keyA, err = f.store.CreateAPIKey(ctx, f.a.Org.ID, "read", []auth.Scope{auth.ScopeRead}, f.a.Owner.ID); err != nil {
		t.Fatal(err)
	}
	if _, f.ingestKeyA, err = f.store.CreateAPIKey(ctx, f.a.Org.ID, "ingest", []auth.Scope{auth.ScopeIngest}, f.a.Owner.ID); err != nil {
		t.Fatal(err)
	}
	if _, f.keyB, err = f.store.CreateAPIKey(ctx, f.b.Org.ID, "read", []auth.Scope{auth.ScopeRead}, f.b.Owner.ID); err != nil {
		t.Fatal(err)
	}
	if _, f.shareA, err = f.store.CreateShareLink(ctx, f.a.Site.ID, "public", time.Hour, f.a.Owner.ID); err != nil {
		t.Fatal(err)
	}
	dup := uuid.New()
	signup := func(at string, visitor, session uint64, source, channel, device, user string, keys, values []string) qEvent {
		return qEvent{at: at, typ: "track", name: "Signup", page: "/signup", visitor: visitor, session: session, source: source, channel: channel, country: "DE", device: device, user: user, propKeys: keys, propValues: values}
	}
	page := func(at, path string, visitor, session uint64, source, channel, country, device, user string) qEvent {
		return qEvent{at: at, typ: "page", page: path, visitor: visitor, session: session, source: source, channel: channel, country: country, device: device, user: user}
	}
	s1Signup := signup("2026-10-24 22:40", 1, 101, "(direct)", "Direct", "Desktop", "u1", []string{"plan", "revenue"}, []string{"pro", "49.5"})
	s1Signup.id = uuid.New()
	insertEvents(t, f.db, f.a.Site,
		page("2026-10-23 10:00", "/", 5, 100, "(direct)", "Direct", "US", "Desktop", ""),
		page("2026-10-24 22:30", "/", 1, 101, "Google", "Organic Search", "DE", "Desktop", "u1"),
		page("2026-10-24 22:35", "/pricing", 1, 101, "(direct)", "Direct", "DE", "Desktop", "u1"),
		s1Signup,
		page("2026-10-24 22:41", "/signup", 1, 101, "(direct)", "Direct", "DE", "Desktop", "u1"),
		page("2026-10-25 09:00", "/", 2, 102, "(direct)", "Direct", "FR", "Mobile", ""),
		page("2026-10-25 23:30", "/blog/a", 3, 103, "Google", "Organic Search", "DE", "Mobile", "u2"),
		qEvent{id: dup, at: "2026-10-25 23:50", typ: "page", page: "/pricing", visitor: 3, session: 103, source: "(direct)", channel: "Direct", country: "DE", device: "Mobile", user: "u2"},
		page("2026-10-26 10:00", "/pricing", 1, 104, "Twitter", "Organic Social", "DE", "Desktop", "u1"),
		signup("2026-10-26 10:05", 1, 104, "(direct)", "Direct", "Desktop", "u1", []string{"revenue"}, []string{"10"}),
		qEvent{at: "2026-10-26 12:00", typ: "page", page: "/", visitor: 9, session: 109, source: "(direct)", country: "DE", device: "Desktop", bot: true},
	)
	// The resends of S3's second pageview and S1's sign-up, and S4's late
	// first pageview.
	insertEvents(t, f.db, f.a.Site, s1Signup,
		qEvent{id: dup, at: "2026-10-25 23:50", typ: "page", page: "/pricing", visitor: 3, session: 103, source: "(direct)", channel: "Direct", country: "DE", device: "Mobile", user: "u2"},
	)
	insertEvents(t, f.db, f.a.Site,
		page("2026-10-26 09:58", "/docs", 1, 104, "Twitter", "Organic Social", "DE", "Desktop", "u1"),
	)
	// Another tenant's visit at the same time, on a page nobody else has.
	insertEvents(t, f.db, f.b.Site,
		page("2026-10-25 09:00", "/secret", 2, 102, "Google", "Organic Search", "DE", "Mobile", "u1"),
	)

	e := NewEngine(f.db, Config{QueriesPerSecond: 1000, QueryBurst: 1000})
	api := NewAPI(e, f.store, slog.New(slog.NewTextHandler(testLog{t}, nil)))
	api.now = func() time.Time { return f.now }
	f.app = fiber.New()
	api.Register(f.app)
	return f
}

// post sends body to path with the bearer token and decodes the answer.
func (f *queryFixture) post(t *testing.T, path, token string, body any) (int, map[string]any) {
	t.Helper()
	status, raw := f.postRaw(t, path, token, body, "")
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s answered %d with %q: %v", path, status, raw, err)
	}
	return status, out
}

func (f *queryFixture) postRaw(t *testing.T, path, token string, body any, accept string) (int, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := f.app.Test(req, 30_000)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// query posts a query of site A with its read key and returns the result.
func (f *queryFixture) query(t *testing.T, body map[string]any) Result {
	t.Helper()
	if body["site_id"] == nil {
		body["site_id"] = f.a.Site.ID.String()
	}
	status, raw := f.postRaw(t, "/api/v1/query", f.keyA, body, "")
	if status != 200 {
		t.Fatalf("query %v: %d %s", body, status, raw)
	}
	var r Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

type row struct {
	Dims    []string
	Metrics []float64
}

func rowsOf(r Result) []row {
	out := make([]row, len(r.Results))
	for i, x := range r.Results {
		out[i] = row{x.Dimensions, x.Metrics}
	}
	return out
}

var days2526 = []string{"2026-10-25", "2026-10-26"}

func TestQueryAnswersWorkedOutByHand(t *testing.T) {
	f := newQueryFixture(t)
	tests := []struct {
		name string
		body map[string]any
		want []row
	}{
		{"top stats over two local days across the DST change",
			map[string]any{"metrics": []string{"visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration", "views_per_visit"}, "date_range": days2526},
			[]row{{[]string{}, []float64{3, 4, 8, 10, 25, 570, 2}}}},
		{"sources by visits, the visit's first source",
			map[string]any{"metrics": []string{"visits", "visitors"}, "dimensions": []string{"visit:source"}, "date_range": days2526},
			[]row{{[]string{"Google"}, []float64{2, 2}}, {[]string{"(direct)"}, []float64{1, 1}}, {[]string{"Twitter"}, []float64{1, 1}}}},
		{"entry pages, with the late event first",
			map[string]any{"metrics": []string{"visits", "bounce_rate"}, "dimensions": []string{"visit:entry_page"}, "date_range": days2526},
			[]row{{[]string{"/"}, []float64{2, 50}}, {[]string{"/blog/a"}, []float64{1, 0}}, {[]string{"/docs"}, []float64{1, 0}}}},
		{"exit pages",
			map[string]any{"metrics": []string{"visits"}, "dimensions": []string{"visit:exit_page"}, "date_range": days2526},
			[]row{{[]string{"/pricing"}, []float64{2}}, {[]string{"/"}, []float64{1}}, {[]string{"/signup"}, []float64{1}}}},
		{"pages: the resent pageview counts once",
			map[string]any{"metrics": []string{"pageviews", "visitors"}, "dimensions": []string{"event:page"}, "date_range": days2526},
			[]row{{[]string{"/pricing"}, []float64{3, 2}}, {[]string{"/"}, []float64{2, 2}}, {[]string{"/blog/a"}, []float64{1, 1}}, {[]string{"/docs"}, []float64{1, 1}}, {[]string{"/signup"}, []float64{1, 1}}}},
		{"days in the site's time zone, not UTC",
			map[string]any{"metrics": []string{"visitors", "pageviews"}, "dimensions": []string{"time:day"}, "date_range": days2526},
			[]row{{[]string{"2026-10-25"}, []float64{2, 4}}, {[]string{"2026-10-26"}, []float64{2, 4}}}},
		{"empty days filled with zeros",
			map[string]any{"metrics": []string{"visits"}, "dimensions": []string{"time:day"}, "date_range": []string{"2026-10-24", "2026-10-27"}, "include": map[string]any{"time_labels": true}},
			[]row{{[]string{"2026-10-24"}, []float64{0}}, {[]string{"2026-10-25"}, []float64{2}}, {[]string{"2026-10-26"}, []float64{2}}, {[]string{"2026-10-27"}, []float64{0}}}},
		{"hours carry the offset of their side of the DST change",
			map[string]any{"metrics": []string{"pageviews"}, "dimensions": []string{"time:hour"}, "date_range": []string{"2026-10-25", "2026-10-25"}},
			[]row{{[]string{"2026-10-25T00:00:00+02:00"}, []float64{3}}, {[]string{"2026-10-25T10:00:00+01:00"}, []float64{1}}}},
		{"conversion rate of each event name",
			map[string]any{"metrics": []string{"visitors", "conversion_rate"}, "dimensions": []string{"event:name"}, "date_range": days2526},
			[]row{{[]string{"pageview"}, []float64{3, 100}}, {[]string{"Signup"}, []float64{1, 33.3}}}},
		{"revenue by plan property",
			map[string]any{"metrics": []string{"sum:revenue", "events"}, "dimensions": []string{"event:props:plan"}, "filters": []any{[]any{"is", "event:name", []string{"Signup"}}}, "date_range": days2526},
			[]row{{[]string{"pro"}, []float64{49.5, 1}}, {[]string{"(none)"}, []float64{10, 1}}}},
		{"visits that viewed /pricing",
			map[string]any{"metrics": []string{"visits", "bounce_rate", "pageviews"}, "filters": []any{[]any{"is", "event:page", []string{"/pricing"}}}, "date_range": days2526},
			[]row{{[]string{}, []float64{3, 0, 3}}}},
		{"pageviews of German visitors",
			map[string]any{"metrics": []string{"visitors", "pageviews"}, "filters": []any{[]any{"is", "visit:country", []string{"de"}, map[string]any{"case_sensitive": false}}}, "date_range": days2526},
			[]row{{[]string{}, []float64{2, 7}}}},
		{"pageviews of visits from Google",
			map[string]any{"metrics": []string{"pageviews"}, "filters": []any{[]any{"is", "visit:source", []string{"Google"}}}, "date_range": days2526},
			[]row{{[]string{}, []float64{5}}}},
		{"pages of visits from Google, joined from the visit",
			map[string]any{"metrics": []string{"pageviews"}, "dimensions": []string{"event:page"}, "filters": []any{[]any{"is", "visit:source", []string{"Google"}}}, "date_range": days2526},
			[]row{{[]string{"/pricing"}, []float64{2}}, {[]string{"/"}, []float64{1}}, {[]string{"/blog/a"}, []float64{1}}, {[]string{"/signup"}, []float64{1}}}},
		{"or, not, contains and matches",
			map[string]any{"metrics": []string{"visits"}, "date_range": days2526, "filters": []any{
				[]any{"or", []any{[]any{"contains", "visit:entry_page", []string{"blog"}}, []any{"matches", "visit:source", []string{"^Tw"}}}},
				[]any{"not", []any{"is", "visit:device", []string{"Mobile"}}}}},
			[]row{{[]string{}, []float64{1}}}},
		{"order by dimension, limit and offset",
			map[string]any{"metrics": []string{"visits"}, "dimensions": []string{"visit:entry_page"}, "order_by": [][]string{{"visit:entry_page", "desc"}}, "limit": 2, "offset": 1, "date_range": days2526},
			[]row{{[]string{"/blog/a"}, []float64{1}}, {[]string{"/"}, []float64{2}}}},
		{"visit and event metrics together",
			map[string]any{"metrics": []string{"visits", "sum:revenue"}, "dimensions": []string{"visit:device"}, "date_range": days2526},
			[]row{{[]string{"Desktop"}, []float64{2, 59.5}}, {[]string{"Mobile"}, []float64{2, 0}}}},
	}
	// The same answers from visits merged at query time, and from
	// sessions_final once the Finalizer has written them.
	for _, phase := range []string{"merged", "finalized"} {
		if phase == "finalized" {
			months, err := NewFinalizer(f.db, FinalizerConfig{}).Pass(context.Background())
			if err != nil || !slices.Contains(months, 202610) {
				t.Fatalf("finalizer wrote %v, %v; want October 2026", months, err)
			}
		}
		for _, tt := range tests {
			t.Run(phase+"/"+tt.name, func(t *testing.T) {
				got := rowsOf(f.query(t, tt.body))
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got  %v\nwant %v", got, tt.want)
				}
			})
		}
	}
}

func TestQueryComparisonAndTotals(t *testing.T) {
	f := newQueryFixture(t)
	// A visit long before the comparison range, so that the site's data
	// covers it (else the changes would be withheld: compare_test.go).
	insertEvents(t, f.db, f.a.Site, qEvent{at: "2026-10-01 10:00", typ: "page", page: "/", visitor: 7, session: 107, source: "(direct)", channel: "Direct", country: "DE", device: "Desktop"})
	r := f.query(t, map[string]any{"metrics": []string{"visits", "bounce_rate"}, "dimensions": []string{"time:day"}, "date_range": days2526,
		"include": map[string]any{"totals": true, "comparison": "previous_period"}})
	if r.Totals == nil || !reflect.DeepEqual(r.Totals.Metrics, []float64{4, 25}) {
		t.Fatalf("totals = %+v, want visits 4, bounce rate 25", r.Totals)
	}
	// The previous two days (Oct 23–24) hold S0, one bounce.
	c := r.Totals.Comparison
	if c == nil || !reflect.DeepEqual(c.Metrics, []float64{1, 100}) || *c.Change[0] != 300 || *c.Change[1] != -75 {
		t.Fatalf("totals comparison = %+v, want visits 1 (+300 %%), bounce rate 100 (-75 points)", c)
	}
	if got := r.Meta.ComparisonDateRange; got == nil || got[0] != "2026-10-23T00:00:00+02:00" || got[1] != "2026-10-25T00:00:00+02:00" {
		t.Fatalf("comparison range = %v", got)
	}
	// Day 1 (Oct 25) compares with Oct 23, day 2 with Oct 24.
	first := r.Results[0]
	if first.Dimensions[0] != "2026-10-25" || first.Comparison == nil || first.Comparison.Metrics[0] != 1 {
		t.Fatalf("first day = %+v, want 2026-10-25 compared with Oct 23's 1 visit", first)
	}
	second := r.Results[1]
	if second.Comparison.Metrics[0] != 0 || second.Comparison.Change[0] != nil {
		t.Fatalf("second day = %+v, want a comparison of 0 visits and no change", second)
	}
}

func TestFunnelAndCohorts(t *testing.T) {
	f := newQueryFixture(t)
	status, body := f.post(t, "/api/v1/funnel", f.keyA, map[string]any{"site_id": f.a.Site.ID, "date_range": days2526,
		"steps": []any{map[string]string{"page": "/"}, map[string]string{"page": "/pri*"}, map[string]string{"event": "Signup"}}, "breakdown": "visit:country"})
	if status != 200 {
		t.Fatalf("funnel: %d %v", status, body)
	}
	var fr FunnelResult
	remarshal(t, body, &fr)
	// Visitor 1 did all three in order within 30 minutes; visitor 2 only
	// the first; visitor 3 never saw /.
	want := []StepResult{
		{Label: "/", Visitors: 2, ConversionRate: 100, ConversionRateStep: 100},
		{Label: "/pri*", Visitors: 1, ConversionRate: 50, ConversionRateStep: 50, Dropoff: 1},
		{Label: "Signup", Visitors: 1, ConversionRate: 50, ConversionRateStep: 100},
	}
	if !reflect.DeepEqual(fr.Steps, want) {
		t.Fatalf("funnel steps = %+v\nwant %+v", fr.Steps, want)
	}
	if len(fr.Breakdown) != 2 || fr.Breakdown[0].Value != "DE" || fr.Breakdown[0].Steps[2].Visitors != 1 || fr.Breakdown[1].Value != "FR" || fr.Breakdown[1].Steps[1].Visitors != 0 {
		t.Fatalf("funnel breakdown = %+v, want DE 1/1/1 then FR 1/0/0", fr.Breakdown)
	}

	status, body = f.post(t, "/api/v1/retention", f.keyA, map[string]any{"site_id": f.a.Site.ID, "date_range": days2526, "period": "day"})
	if status != 200 {
		t.Fatalf("retention: %d %v", status, body)
	}
	var cr CohortResult
	remarshal(t, body, &cr)
	// u1 first seen Oct 25 (local), back Oct 26; u2 first seen Oct 26.
	wantC := []Cohort{
		{Cohort: "2026-10-25", Users: 1, Retained: []uint64{1, 1}, Rate: []float64{100, 100}},
		{Cohort: "2026-10-26", Users: 1, Retained: []uint64{1}, Rate: []float64{100}},
	}
	if !reflect.DeepEqual(cr.Cohorts, wantC) {
		t.Fatalf("cohorts = %+v\nwant %+v", cr.Cohorts, wantC)
	}
}

func remarshal(t *testing.T, in any, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

func TestQueryCSVExport(t *testing.T) {
	f := newQueryFixture(t)
	status, raw := f.postRaw(t, "/api/v1/query", f.keyA, map[string]any{"site_id": f.a.Site.ID, "metrics": []string{"visits"},
		"dimensions": []string{"visit:source"}, "date_range": days2526}, "text/csv")
	want := "visit:source,visits\nGoogle,2\n(direct),1\nTwitter,1\n"
	if status != 200 || string(raw) != want {
		t.Fatalf("csv: %d %q, want %q", status, raw, want)
	}
}

func TestQueryRefusesOtherTenantsAndBadCredentials(t *testing.T) {
	f := newQueryFixture(t)
	q := map[string]any{"site_id": f.a.Site.ID, "metrics": []string{"pageviews"}, "dimensions": []string{"event:page"}, "date_range": "all"}
	for _, tt := range []struct {
		name, token string
		want        int
	}{
		{"another tenant's read key", f.keyB, 404},
		{"an ingest-only key", f.ingestKeyA, 404},
		{"no credentials", "", 401},
		{"a forged token", "sk_forged", 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.post(t, "/api/v1/query", tt.token, q)
			if status != tt.want {
				t.Fatalf("status %d (%v), want %d", status, body, tt.want)
			}
		})
	}
	// Tenant B's own key sees only B's page.
	qb := map[string]any{"site_id": f.b.Site.ID, "metrics": []string{"pageviews"}, "dimensions": []string{"event:page"}, "date_range": "all"}
	status, body := f.post(t, "/api/v1/query", f.keyB, qb)
	if status != 200 || !strings.Contains(toJSON(body), `"/secret"`) || strings.Contains(toJSON(body), `"/pricing"`) {
		t.Fatalf("tenant B's own query: %d %v", status, body)
	}
	// A share link reads its own site, and nothing else.
	if status, body := f.post(t, "/api/v1/query", f.shareA, q); status != 200 || !strings.Contains(toJSON(body), `"/pricing"`) {
		t.Fatalf("share link on its site: %d %v", status, body)
	}
	if status, _ := f.post(t, "/api/v1/query", f.shareA, qb); status != 404 {
		t.Fatalf("share link on another site: %d, want 404", status)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestQueryRejectsOrBindsInjection(t *testing.T) {
	f := newQueryFixture(t)
	site := f.a.Site.ID.String()
	evil := "x') OR 1=1 --"
	bad := []struct {
		name  string
		body  any
		field string
	}{
		{"dimension", map[string]any{"site_id": site, "metrics": []string{"visits"}, "date_range": "7d", "dimensions": []string{"visit:source; DROP TABLE events"}}, "dimensions[0]"},
		{"metric", map[string]any{"site_id": site, "metrics": []string{"count() FROM system.tables --"}, "date_range": "7d"}, "metrics[0]"},
		{"filter dimension", map[string]any{"site_id": site, "metrics": []string{"visits"}, "date_range": "7d", "filters": []any{[]any{"is", "pathname) OR (1", []string{"/"}}}}, "filters[0][1]"},
		{"filter operator", map[string]any{"site_id": site, "metrics": []string{"visits"}, "date_range": "7d", "filters": []any{[]any{"= '' OR", "event:page", []string{"/"}}}}, "filters[0][0]"},
		{"order field", map[string]any{"site_id": site, "metrics": []string{"visits"}, "date_range": "7d", "order_by": [][]string{{"visits; DROP", "desc"}}}, "order_by[0][0]"},
		{"order direction", map[string]any{"site_id": site, "metrics": []string{"visits"}, "date_range": "7d", "order_by": [][]string{{"visits", "desc, (SELECT 1)"}}}, "order_by[0][1]"},
		{"regular expression", map[string]any{"site_id": site, "metrics": []string{"visits"}, "date_range": "7d", "filters": []any{[]any{"matches", "event:page", []string{"(("}}}}, "filters[0][2][0]"},
		{"site id", map[string]any{"site_id": "' OR 1=1", "metrics": []string{"visits"}, "date_range": "7d"}, "site_id"},
		{"date", map[string]any{"site_id": site, "metrics": []string{"visits"}, "date_range": []string{"2026-10-25' OR '1", "2026-10-26"}}, "date_range"},
		{"unknown field", map[string]any{"site_id": site, "metrics": []string{"visits"}, "date_range": "7d", "sql": "SELECT 1"}, "sql"},
		{"visit metric by event dimension", map[string]any{"site_id": site, "metrics": []string{"bounce_rate"}, "date_range": "7d", "dimensions": []string{"event:page"}}, "dimensions[0]"},
		{"conversion rate without a goal", map[string]any{"site_id": site, "metrics": []string{"conversion_rate"}, "date_range": "7d"}, "metrics[0]"},
	}
	for _, tt := range bad {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			status, body := f.post(t, "/api/v1/query", f.keyA, tt.body)
			if status != 400 || body["field"] != tt.field || body["error"] == "" {
				t.Fatalf("status %d %v, want 400 naming %s", status, body, tt.field)
			}
		})
	}
	// Values, property keys and property sums are bound: they match nothing
	// (or the literal text) and leak nothing.
	for _, tt := range []struct {
		name string
		body map[string]any
		want []row
	}{
		{"filter value", map[string]any{"metrics": []string{"visits"}, "date_range": days2526, "filters": []any{[]any{"is", "event:page", []string{evil}}}}, []row{{[]string{}, []float64{0}}}},
		{"contains value", map[string]any{"metrics": []string{"pageviews"}, "date_range": days2526, "filters": []any{[]any{"contains", "event:page", []string{`\' OR 1=1`}}}}, []row{{[]string{}, []float64{0}}}},
		{"property key", map[string]any{"metrics": []string{"events"}, "date_range": days2526, "dimensions": []string{"event:props:" + evil}}, []row{{[]string{"(none)"}, []float64{10}}}},
		{"sum key", map[string]any{"metrics": []string{"sum:" + evil}, "date_range": days2526}, []row{{[]string{}, []float64{0}}}},
	} {
		t.Run("binds "+tt.name, func(t *testing.T) {
			if got := rowsOf(f.query(t, tt.body)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestQueryRateLimit(t *testing.T) {
	f := newQueryFixture(t)
	e := NewEngine(f.db, Config{QueriesPerSecond: 1, QueryBurst: 2})
	api := NewAPI(e, f.store, slog.New(slog.DiscardHandler))
	api.now = func() time.Time { return f.now }
	f.app = fiber.New()
	api.Register(f.app)
	q := map[string]any{"site_id": f.a.Site.ID, "metrics": []string{"visits"}, "date_range": "7d"}
	for i := range 2 {
		if status, body := f.post(t, "/api/v1/query", f.keyA, q); status != 200 {
			t.Fatalf("query %d: %d %v", i, status, body)
		}
	}
	b, _ := json.Marshal(q)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/query", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+f.keyA)
	resp, err := f.app.Test(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("third query in the same instant: %d Retry-After %q, want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another caller has its own budget.
	if status, _ := f.post(t, "/api/v1/query", f.shareA, q); status != 200 {
		t.Fatalf("share link after key was limited: %d", status)
	}
}

// testLog writes a logger's lines to the test's log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
