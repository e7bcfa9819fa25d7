package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
	"github.com/pulse-analytics/pulse/internal/demo"
)

// Goals for the query benchmarks (what a dashboard user waits for): not physical limits, so each
// figure's ratio ≤ 1 means the goal is met.
const (
	goalQueryP50  = 100 // ms, each standard report query
	goalReportP50 = 500 // ms, the whole default report
	// benchQueryRuns is how many times each query runs for its p50.
	benchQueryRuns = 15
)

// defaultReport is what the dashboard's report asks for when it opens with
// the default range (30 days): the panels of the page, each one query, with
// the metrics of their columns (PANEL_METRICS in dashboard/web/src/pages/report.tsx).
func defaultReport(site string) map[string]Request {
	r := func(metrics []string, dims ...string) Request {
		limit := 10
		return Request{SiteID: site, Metrics: metrics, Dimensions: dims, DateRange: json.RawMessage(`"30d"`), Limit: &limit}
	}
	top := r([]string{"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"})
	top.Include.Comparison = comparePrevious
	series := r([]string{"visitors"}, "time:day")
	series.Include.TimeLabels = true
	return map[string]Request{
		"top_stats":   top,
		"timeseries":  series,
		"sources":     r([]string{"visitors"}, "visit:source"),
		"channels":    r([]string{"visitors"}, "visit:channel"),
		"campaigns":   r([]string{"visitors"}, "visit:utm_campaign"),
		"pages":       r([]string{"visitors", "pageviews", "time_on_page", "scroll_depth"}, "event:page"),
		"entry_pages": r([]string{"visits"}, "visit:entry_page"),
		"exit_pages":  r([]string{"visits"}, "visit:exit_page"),
		"countries":   r([]string{"visitors"}, "visit:country"),
		"devices":     r([]string{"visitors"}, "visit:device"),
		"browsers":    r([]string{"visitors"}, "visit:browser"),
		"os":          r([]string{"visitors"}, "visit:os"),
		"goals":       r([]string{"visitors", "events", "conversion_rate"}, "event:name"),
	}
}

// BenchmarkQuery loads 10 million realistic events of one site over 90 days
// (PULSE_BENCH_EVENTS overrides the number; PULSE_BENCH_ENGAGEMENT=1 makes
// them those of a site on the full tracker, with its engagement events)
// and times each standard report
// query and the whole default report (every panel at once, as the
// dashboard asks), as p50 over benchQueryRuns runs. A query's time is
// ParseQuery's and Run's, as in a request.
func BenchmarkQuery(b *testing.B) {
	ctx := context.Background()
	db := chtest.Open(b)
	store := authtest.Store(b, db, auth.Config{})
	tn := authtest.NewTenant(b, store, "bench.example")
	events := demo.DefaultLoadEvents
	if s := os.Getenv("PULSE_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("PULSE_BENCH_EVENTS=%q: %v", s, err)
		}
		events = n
	}
	engagement := false
	if s := os.Getenv("PULSE_BENCH_ENGAGEMENT"); s != "" {
		on, err := strconv.ParseBool(s)
		if err != nil {
			b.Fatalf("PULSE_BENCH_ENGAGEMENT=%q: %v", s, err)
		}
		engagement = on
	}
	now := time.Now().UTC()
	stats, err := demo.Load(ctx, db, demo.LoadConfig{Tenant: tn.Org.ID, Site: tn.Site.ID, Events: events, To: now.Truncate(time.Hour), Engagement: engagement, Progress: os.Stderr})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d events, %d visits in %s (%.0f events/s)", stats.Events, stats.Visits, stats.Elapsed.Round(time.Second), stats.EventsPerSecond())
	// Finalize the visits before yesterday, then again until ClickHouse's
	// merges after the load have settled and a pass finds nothing changed,
	// as it does a minute after a load in `pulse serve`.
	began := time.Now()
	fin := NewFinalizer(db, FinalizerConfig{})
	for i := 0; ; i++ {
		months, err := fin.Pass(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(months) == 0 || i == 20 {
			break
		}
		time.Sleep(5 * time.Second)
	}
	b.Logf("finalized the visits before yesterday in %s", time.Since(began).Round(time.Millisecond))
	e := NewEngine(db, Config{})
	report := defaultReport(tn.Site.ID.String())
	// Each run is what a request costs once authenticated: ParseQuery
	// (which reads the Finalizer's state) and Run.
	run := func(req Request) time.Duration {
		start := time.Now()
		q, err := e.ParseQuery(ctx, req, tn.Site, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Run(ctx, q); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range report {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		run(report[n]) // warm the caches once
	}
	for _, n := range names {
		b.Run(n, func(b *testing.B) {
			var times []time.Duration
			for b.Loop() {
				times = times[:0]
				for range benchQueryRuns {
					times = append(times, run(report[n]))
				}
			}
			b.ReportMetric(p50ms(times), "ms")
			b.ReportMetric(goalQueryP50, "limit-ms")
		})
	}
	b.Run("default_report", func(b *testing.B) {
		var times []time.Duration
		for b.Loop() {
			times = times[:0]
			for range benchQueryRuns {
				start := time.Now()
				var wg sync.WaitGroup
				for _, req := range report {
					wg.Go(func() { run(req) })
				}
				wg.Wait()
				times = append(times, time.Since(start))
			}
		}
		b.ReportMetric(p50ms(times), "ms")
		b.ReportMetric(goalReportP50, "limit-ms")
	})
	fmt.Fprintf(os.Stderr, "query bench: %d events over %s (engagement events: %t), ClickHouse %s\n", stats.Events, demo.DefaultLoadSpan, engagement, serverVersion(b, e))
}

func serverVersion(b *testing.B, e *Engine) string {
	var v string
	if err := e.db.QueryRow(context.Background(), "SELECT version()").Scan(&v); err != nil {
		b.Fatal(err)
	}
	return v
}

func p50ms(ts []time.Duration) float64 {
	s := slices.Clone(ts)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}
