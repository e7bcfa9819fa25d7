package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// BenchmarkIngestInsert measures the writer's rows/s into the events
// table in blocks of DefaultBatchRows, and compares it with the same-run limit:
// the server generating and inserting the same number of rows of the same shape
// itself (INSERT … SELECT), which no client can beat.
func BenchmarkIngestInsert(b *testing.B) {
	db := chtest.Open(b)
	ctx := context.Background()
	w := NewWriter(db)
	events := benchEvents(DefaultBatchRows)

	for b.Loop() {
		if err := w.WriteEvents(ctx, events); err != nil {
			b.Fatal(err)
		}
	}
	rows := b.N * len(events)
	rate := float64(rows) / b.Elapsed().Seconds()

	limit, err := serverSideInsertRate(ctx, db, rows)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rate, "rows/s")
	b.ReportMetric(limit, "limit-rows/s")
}

// benchEvents makes n pageviews shaped like a tracker's: a few hosts and paths,
// a referrer, two properties.
func benchEvents(n int) []Event {
	tenant, site := uuid.New(), uuid.New()
	now := time.Now().UTC().Truncate(time.Second)
	events := make([]Event, n)
	for i := range events {
		events[i] = Event{
			TenantID: tenant, SiteID: site, ID: uuid.New(),
			Time: now.Add(-time.Duration(i) * time.Second), ReceivedAt: now,
			Type: "page", Name: "pageview",
			Hostname: "shop.example", Pathname: fmt.Sprintf("/products/%d", i%500), Title: "Product page",
			Referrer: "https://search.example/", ReferrerHost: "search.example", UTMSource: "newsletter",
			VisitorID: uint64(i % 2000), SessionID: uint64(i % 3000),
			Device: "desktop", Browser: "Firefox", BrowserVersion: "133", OS: "Linux", Country: "DE",
			PropKeys: []string{"plan", "seats"}, PropValues: []string{"pro", "3"},
			Source: "Google", Medium: "organic", Channel: "Organic Search",
		}
	}
	return events
}

// serverSideInsertRate times ClickHouse inserting rows generated on the server,
// shaped as benchEvents: one site, 2,000 visitors and 3,000 visits (the
// sessions view's work depends on how many visits a block holds).
func serverSideInsertRate(ctx context.Context, db *chdb.DB, rows int) (float64, error) {
	const query = `INSERT INTO events (tenant_id, site_id, event_id, ts, received_at, type, name,
		hostname, pathname, query, title, referrer, referrer_host,
		utm_source, utm_medium, utm_campaign, utm_term, utm_content,
		visitor_id, session_id, user_id,
		device, browser, browser_version, os, os_version, country, region, city,
		prop_keys, prop_values, source, medium, channel, is_bot)
	SELECT toUUID(?), toUUID(?), generateUUIDv4(), toDateTime(now() - number), now(), 'page', 'pageview',
		'shop.example', concat('/products/', toString(number % 500)), '', 'Product page', 'https://search.example/', 'search.example',
		'newsletter', '', '', '', '',
		number % 2000, number % 3000, '',
		'desktop', 'Firefox', '133', 'Linux', '', 'DE', '', '',
		['plan', 'seats'], ['pro', '3'], 'Google', 'organic', 'Organic Search', 0
	FROM system.numbers LIMIT ?`
	start := time.Now()
	if err := db.Exec(ctx, query, uuid.NewString(), uuid.NewString(), rows); err != nil {
		return 0, fmt.Errorf("server-side insert: %w", err)
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}
