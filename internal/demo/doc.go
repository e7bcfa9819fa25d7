// Package demo generates realistic analytics traffic for one site: live
// visitors that use the real ingest WebSocket (`pulse dev --demo`), and
// history written straight into ClickHouse as enriched rows (the demo's 30-day
// back-fill and the query benchmarks' loader).
//
// Every visit comes from one model (site.go): a source with its referrer and
// campaign, a place, a browser, a walk through the site's pages with custom
// events and a sign-up funnel, timed by a daily and weekly rhythm (rhythm.go).
// History rows are enriched by ingest/enrich's own functions (user agents,
// sources and channels), so they look like rows ingest writes.
package demo
