// Package dashboard answers historical questions about a site's traffic: it
// turns query specs into tenant-scoped, parameterised ClickHouse SQL and
// serves them over HTTP (query, funnel, cohort retention, CSV export), and it
// looks after the data's lifecycle.
package dashboard
