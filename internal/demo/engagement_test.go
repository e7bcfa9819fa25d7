package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/dashboard"
	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// TestHistoryGivesPagesTimeOnPageAndScrollDepth: the demo's history sends
// the full tracker's engagement events, so the query API gives each of the
// top pages a time on page and a scroll depth (the same as plain SQL over
// the stored engagement events), documentation read longer and further
// down than the pricing page; and the visits stay what they were (a bounce
// has its engagement event and is still a bounce).
func TestHistoryGivesPagesTimeOnPageAndScrollDepth(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	store := authtest.Store(t, db, auth.Config{})
	tn := authtest.NewTenant(t, store, "demo.test")
	_, key, err := store.CreateAPIKey(ctx, tn.Org.ID, "read", []auth.Scope{auth.ScopeRead}, tn.Owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Tenant: tn.Org.ID, Site: tn.Site.ID, VisitsPerDay: 2000}, db, ingest.NewWriter(db))
	if err != nil {
		t.Fatal(err)
	}
	until := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if _, err := d.Backfill(ctx, until.Add(-3*24*time.Hour), until); err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	dashboard.NewAPI(dashboard.NewEngine(db, dashboard.Config{}), store, slog.New(slog.NewTextHandler(io.Discard, nil))).Register(app)
	ask := func(body map[string]any) [][]any {
		t.Helper()
		body["site_id"] = tn.Site.ID.String()
		body["date_range"] = []string{"2026-02-27", "2026-03-01"}
		raw, _ := json.Marshal(body)
		req := httptest.NewRequest("POST", "/api/v1/query", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Results []struct {
				Dimensions []string
				Metrics    []float64
			}
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil {
			t.Fatalf("query %s: %d %s", raw, resp.StatusCode, b)
		}
		var rows [][]any
		for _, r := range out.Results {
			row := []any{}
			for _, v := range r.Dimensions {
				row = append(row, v)
			}
			for _, v := range r.Metrics {
				row = append(row, v)
			}
			rows = append(rows, row)
		}
		return rows
	}

	// The pages as plain SQL: a page visit is the engagement events of one
	// visit on one page, its time their sum, its depth the deepest.
	sql := map[string][2]float64{}
	rows, err := db.Query(ctx, `SELECT pathname, sum(ms) / count() / 1000, sum(scroll) / count() FROM (
		SELECT session_id, pathname, sum(toFloat64(prop_values[indexOf(prop_keys, 'ms')])) AS ms,
			max(toFloat64(prop_values[indexOf(prop_keys, 'scroll')])) AS scroll
		FROM events WHERE site_id = toUUID(?) AND is_bot = 0 AND type = 'track' AND name = 'engagement'
			AND ts >= toDateTime('2026-02-27 00:00:00') AND ts < toDateTime('2026-03-02 00:00:00')
		GROUP BY session_id, pathname) GROUP BY pathname`, tn.Site.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var page string
		var sec, depth float64
		if err := rows.Scan(&page, &sec, &depth); err != nil {
			t.Fatal(err)
		}
		sql[page] = [2]float64{math.Round(sec), math.Round(depth)}
	}
	rows.Close()

	top := ask(map[string]any{"metrics": []string{"visitors", "time_on_page", "scroll_depth"}, "dimensions": []string{"event:page"},
		"order_by": [][]string{{"visitors", "desc"}}, "limit": 15})
	if len(top) != 15 {
		t.Fatalf("the top pages are %v, want 15", top)
	}
	got := map[string][2]float64{}
	for _, r := range top {
		page, sec, depth := r[0].(string), r[2].(float64), r[3].(float64)
		t.Logf("%-40s %5.0f visitors %4.0f s %3.0f %%", page, r[1], sec, depth)
		got[page] = [2]float64{sec, depth}
		if sec <= 0 || depth <= 0 || depth > 100 {
			t.Errorf("%s: time on page %v s, scroll depth %v %%: want both", page, sec, depth)
		}
		if want := sql[page]; got[page] != want {
			t.Errorf("%s: the API answers %v s and %v %%, the SQL %v", page, sec, depth, want)
		}
	}
	docs, pricing := got["/docs/getting-started"], got["/pricing"]
	if docs[0] <= pricing[0] || docs[1] <= pricing[1] {
		t.Errorf("/docs/getting-started is read %v s down to %v %%, /pricing %v s down to %v %%: want the docs read longer and deeper", docs[0], docs[1], pricing[0], pricing[1])
	}

	// The visits: engagement ended no bounce (each bounce, a visit of one
	// pageview, has its engagement event).
	var visits, bounces, engagedBounces uint64
	err = db.QueryRow(ctx, `SELECT count(), countIf(pv = 1 AND n = 1), countIf(pv = 1 AND n = 1 AND e = 1) FROM (
		SELECT session_id, countIf(type = 'page') AS pv, countIf(name != 'engagement') AS n, countIf(name = 'engagement') AS e
		FROM events WHERE site_id = toUUID(?) AND is_bot = 0 AND ts >= toDateTime('2026-02-27 00:00:00') AND ts < toDateTime('2026-03-02 00:00:00')
		GROUP BY session_id)`, tn.Site.ID.String()).Scan(&visits, &bounces, &engagedBounces)
	if err != nil {
		t.Fatal(err)
	}
	rate := ask(map[string]any{"metrics": []string{"visits", "bounce_rate"}})
	want := []any{float64(visits), math.Round(1000*float64(bounces)/float64(visits)) / 10}
	if fmt.Sprint(rate) != fmt.Sprint([][]any{want}) || engagedBounces < bounces*9/10 {
		t.Errorf("the API answers visits and bounce rate %v, the SQL %v; %d of %d bounces have their engagement event", rate, want, engagedBounces, bounces)
	}
}
