package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
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

// storedEventsToday is how many events the lookup benchmark's site holds
// before it writes: about the day of a site with 12 events per second.
const storedEventsToday = 1_000_000

// BenchmarkIngestStoredLookup measures what the writer's lookup of stored
// events costs per block of DefaultBatchRows events (WriteChunks: the lookup,
// then the insert of what is new) on a site that holds storedEventsToday
// events of today. A block is shaped as the tracker's: times of the last
// seconds, with 0.1% resends of stored events (backdated: each costs the
// lookup a granule of its own). Its limit is the
// same-run rate of inserting a block of the same shape without a lookup
// (WriteEvents). It also reports the lookup alone, of such a block
// (lookup-ms) and of one without backdated events (fresh-lookup-ms), and, for
// comparison, the same lookup in events by UTC day (events-lookup-ms), which
// reads every granule of the day and grows with it.
func BenchmarkIngestStoredLookup(b *testing.B) {
	db := chtest.Open(b)
	ctx := context.Background()
	w := NewWriter(db)
	tenant, site := uuid.New(), uuid.New()
	now := time.Now().UTC().Truncate(time.Second)
	err := db.Exec(ctx, `INSERT INTO events (tenant_id, site_id, event_id, ts, received_at, type, name,
		hostname, pathname, query, title, referrer, referrer_host,
		utm_source, utm_medium, utm_campaign, utm_term, utm_content,
		visitor_id, session_id, user_id,
		device, browser, browser_version, os, os_version, country, region, city,
		prop_keys, prop_values, source, medium, channel, is_bot)
	SELECT toUUID(?), toUUID(?), generateUUIDv4(), toDateTime(toUInt32(toDateTime(?)) - number % 43200), toDateTime(?), 'page', 'pageview',
		'shop.example', concat('/products/', toString(number % 500)), '', 'Product page', '', '',
		'', '', '', '', '', number % 2000, number % 3000, '',
		'desktop', 'Firefox', '133', 'Linux', '', 'DE', '', '', [], [], '', '', 'Direct', 0
	FROM system.numbers LIMIT ?`, tenant.String(), site.String(), now, now, storedEventsToday)
	if err != nil {
		b.Fatal(err)
	}
	var resends []Event
	rows, err := db.Query(ctx, "SELECT event_id, ts FROM events WHERE site_id = toUUID(?) AND session_id != 0 LIMIT ?", site.String(), DefaultBatchRows/1000)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		e := Event{TenantID: tenant, SiteID: site, Type: "page", Name: "pageview"}
		if err := rows.Scan(&e.ID, &e.Time); err != nil {
			b.Fatal(err)
		}
		resends = append(resends, e)
	}
	rows.Close()
	for i := range resends {
		resends[i].SessionID = 1 // enriched again: a visit to count
	}
	block := func() []Event {
		events := benchEvents(DefaultBatchRows - len(resends))
		for i := range events {
			events[i].TenantID, events[i].SiteID = tenant, site
			events[i].Time = now.Add(-time.Duration(i%5) * time.Second)
			events[i].SessionID = uint64(1 + i%3000)
		}
		return append(events, resends...)
	}

	var freshLookup, lookup, eventsLookup, checked, plain time.Duration
	var written, plainRows int
	for b.Loop() {
		fresh, chunks := [][]Event{block()[:DefaultBatchRows-len(resends)]}, [][]Event{block()}
		start := time.Now()
		if _, err := w.stored(ctx, fresh); err != nil {
			b.Fatal(err)
		}
		freshLookup += time.Since(start)
		start = time.Now()
		skip, err := w.stored(ctx, chunks)
		lookup += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if n := countTrue(skip); n != len(resends) {
			b.Fatalf("the lookup found %d stored events, want the %d resends", n, len(resends))
		}
		start = time.Now()
		if err := findInEvents(ctx, db, chunks[0]); err != nil {
			b.Fatal(err)
		}
		eventsLookup += time.Since(start)

		start = time.Now()
		n, err := w.WriteChunks(ctx, chunks)
		checked += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		written += n
		other := fresh[0]
		start = time.Now()
		if err := w.WriteEvents(ctx, other); err != nil {
			b.Fatal(err)
		}
		plain += time.Since(start)
		plainRows += len(other)
	}
	b.ReportMetric(float64(freshLookup.Milliseconds())/float64(b.N), "fresh-lookup-ms")
	b.ReportMetric(float64(lookup.Milliseconds())/float64(b.N), "lookup-ms")
	b.ReportMetric(float64(eventsLookup.Milliseconds())/float64(b.N), "events-lookup-ms")
	b.ReportMetric(float64(written)/checked.Seconds(), "rows/s")
	b.ReportMetric(float64(plainRows)/plain.Seconds(), "limit-rows/s")
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// findInEvents looks events up in `events` by its sort key (UTC day and id),
// as the writer does in event_ids by time and id: the comparison that
// BenchmarkIngestStoredLookup reports as events-lookup-ms.
func findInEvents(ctx context.Context, db *chdb.DB, events []Event) error {
	block, err := ext.NewTable("block", ext.Column("tenant_id", column.Type("UUID")), ext.Column("site_id", column.Type("UUID")),
		ext.Column("ts", column.Type("DateTime('UTC')")), ext.Column("event_id", column.Type("UUID")))
	if err != nil {
		return err
	}
	for i := range events {
		e := &events[i]
		if err := block.Append(&e.TenantID, &e.SiteID, &e.Time, &e.ID); err != nil {
			return err
		}
	}
	rows, err := db.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(block)), `SELECT site_id, event_id FROM events
		WHERE (tenant_id, site_id, toDate(ts), event_id) IN (SELECT tenant_id, site_id, toDate(ts), event_id FROM block)`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}
