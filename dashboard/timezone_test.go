package dashboard

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestStoredZoneClickHouseRefusesFallsBackToUTC: a site whose stored time
// zone ClickHouse cannot load (right/UTC, saved before auth checked it)
// still gets its reports, in UTC, and the answer says so; it is not a 500
// on every query.
func TestStoredZoneClickHouseRefusesFallsBackToUTC(t *testing.T) {
	if _, err := time.LoadLocation("right/UTC"); err != nil {
		t.Skipf("Go cannot load right/UTC here (%v): nothing to compare", err)
	}
	f := newQueryFixture(t)
	ctx := context.Background()
	// Store the zone as an older version of auth would have: past the API.
	if err := f.db.Exec(ctx, "INSERT INTO auth_sites (id, org_id, domain, generation, public_key, allowed_origins, time_zone, identity_secret, created_at, deleted, version, honor_dnt, retention_days)"+
		" SELECT id, org_id, domain, generation, public_key, allowed_origins, 'right/UTC', identity_secret, created_at, deleted, version + 1, honor_dnt, retention_days FROM auth_sites FINAL WHERE id = @id",
		clickhouse.Named("id", f.a.Site.ID.String())); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := f.store.Site(f.a.Site.ID); err != nil || s.TimeZone != "right/UTC" {
		t.Fatalf("site after the direct write: %+v, %v", s, err)
	}
	const want = `the site's time zone "right/UTC" is not known to the database; reports are in UTC`

	// Pageviews per UTC day of Oct 25–26, counted by a plain SQL.
	var sqlRows []row
	rows, err := f.db.Query(ctx, "SELECT toString(toDate(ts, 'UTC')) AS d, count() AS n FROM events FINAL WHERE site_id = toUUID(@site) AND type = 'page' AND is_bot = 0"+
		" AND toDate(ts, 'UTC') BETWEEN toDate('2026-10-25') AND toDate('2026-10-26') GROUP BY d ORDER BY d", clickhouse.Named("site", f.a.Site.ID.String()))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d string
		var n uint64
		if err := rows.Scan(&d, &n); err != nil {
			t.Fatal(err)
		}
		sqlRows = append(sqlRows, row{[]string{d}, []float64{float64(n)}})
	}
	rows.Close()

	res := f.query(t, map[string]any{"metrics": []string{"pageviews"}, "dimensions": []string{"time:day"}, "date_range": days2526, "order_by": [][]string{{"time:day", "asc"}}})
	if res.Meta.TimeZone != "UTC" || len(res.Meta.Warnings) != 1 || res.Meta.Warnings[0] != want {
		t.Fatalf("meta %+v, want time zone UTC and the warning %q", res.Meta, want)
	}
	if got := rowsOf(res); len(sqlRows) != 2 || !equalRows(got, sqlRows) {
		t.Fatalf("pageviews by UTC day: API %v, SQL %v", got, sqlRows)
	}
	// The funnel and the cohorts answer too, with the same warning.
	for _, tt := range []struct {
		path string
		body map[string]any
	}{
		{"/api/v1/funnel", map[string]any{"site_id": f.a.Site.ID, "date_range": days2526, "steps": []map[string]string{{"page": "/"}, {"page": "/pricing"}}}},
		{"/api/v1/retention", map[string]any{"site_id": f.a.Site.ID, "date_range": days2526}},
	} {
		status, body := f.post(t, tt.path, f.keyA, tt.body)
		meta, _ := body["meta"].(map[string]any)
		warnings, _ := meta["warnings"].([]any)
		if status != 200 || meta["time_zone"] != "UTC" || len(warnings) != 1 || warnings[0] != want {
			t.Fatalf("%s: %d %v, want 200 in UTC with the warning", tt.path, status, body)
		}
	}
}

func equalRows(a, b []row) bool {
	return toJSON(a) == toJSON(b)
}

// TestDateRangeOutsideDateTimeIsRefused: a date Go parses and ClickHouse's
// DateTime cannot hold is a 400, not an answer of wrapped-around times.
func TestDateRangeOutsideDateTimeIsRefused(t *testing.T) {
	f := newQueryFixture(t)
	for _, dr := range [][]string{
		{"1969-12-01", "1970-01-31"},
		{"2199-01-01", "2199-01-02"},
		{"1960-01-01T00:00:00Z", "1961-01-01T00:00:00Z"},
		{"2105-12-01T00:00:00Z", "2106-03-01T00:00:00Z"},
	} {
		status, body := f.post(t, "/api/v1/query", f.keyA, map[string]any{"site_id": f.a.Site.ID, "metrics": []string{"pageviews"}, "date_range": dr})
		if status != 400 || body["field"] != "date_range" || !strings.Contains(body["error"].(string), MinQueryDate) {
			t.Errorf("date_range %v: %d %v, want 400 naming date_range and the bounds", dr, status, body)
		}
	}
	// The edges themselves are answered.
	for _, dr := range [][]string{{MinQueryDate, "1970-01-05"}, {"2105-12-01", MaxQueryDate}} {
		if status, body := f.post(t, "/api/v1/query", f.keyA, map[string]any{"site_id": f.a.Site.ID, "metrics": []string{"pageviews"}, "date_range": dr}); status != 200 {
			t.Errorf("date_range %v: %d %v, want 200", dr, status, body)
		}
	}
}
