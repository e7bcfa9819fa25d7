package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/pulse-analytics/pulse/ingest"
)

// LoadConfig says what Load writes. Zero fields take the defaults.
type LoadConfig struct {
	// Tenant and Site own the events. Both are required.
	Tenant, Site uuid.UUID
	// Events is how many events to write, exactly. Default DefaultLoadEvents.
	Events int
	// From and To bound the events' times. Default: the DefaultLoadSpan up to
	// the start of the current hour.
	From, To time.Time
	// Seed makes the data: the same seed and settings give the same events,
	// ids included (so a repeated load merges away in ReplacingMergeTree).
	// Default 1.
	Seed uint64
	// Hostname is the site's host in page URLs. Default "example.com".
	Hostname string
	// Engagement adds the full tracker's engagement event for every page a
	// visit leaves (its visible time and scroll depth), as the demo sends
	// them. Off by default: the benchmarks' data set is that of a site on
	// the default pulse.js, which sends none (docs/demo.md).
	Engagement bool
	// BatchRows is the events per INSERT. Default DefaultLoadBatchRows.
	BatchRows int
	// Inserts is how many INSERTs run at once: ClickHouse works on each
	// insert (and its materialized views) with one thread. Default DefaultLoadInserts.
	Inserts int
	// Progress, when set, receives a line at every tenth of the load and a
	// summary at the end.
	Progress io.Writer
}

// Load defaults.
const (
	// DefaultLoadEvents is the query benchmarks' data set: 10M events, a busy site's quarter.
	DefaultLoadEvents = 10_000_000
	// DefaultLoadSpan is the time the benchmark data covers.
	DefaultLoadSpan = 90 * 24 * time.Hour
	// DefaultLoadBatchRows is large enough that ClickHouse makes few parts
	// and small enough to keep a few blocks in memory (about 60 MB each).
	DefaultLoadBatchRows = 100_000
	// DefaultLoadInserts keeps two server threads busy.
	DefaultLoadInserts = 2
	// loadEventsPerVisit is about the model's mean (docs/demo.md), and
	// loadEngagedEventsPerVisit its mean with engagement events.
	loadEventsPerVisit        = 2.5
	loadEngagedEventsPerVisit = 4.8
	// loadSlot is the unit of time whose share of the events follows the rhythm.
	loadSlot = time.Hour
)

func (c *LoadConfig) withDefaults() error {
	if c.Tenant == uuid.Nil || c.Site == uuid.Nil {
		return errors.New("demo: load: Tenant and Site are required")
	}
	if c.Events <= 0 {
		c.Events = DefaultLoadEvents
	}
	if c.To.IsZero() {
		c.To = time.Now().UTC().Truncate(time.Hour)
	}
	if c.From.IsZero() {
		c.From = c.To.Add(-DefaultLoadSpan)
	}
	if !c.From.Before(c.To) {
		return fmt.Errorf("demo: load: From (%s) must be before To (%s)", c.From, c.To)
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Hostname == "" {
		c.Hostname = "example.com"
	}
	if c.BatchRows <= 0 {
		c.BatchRows = DefaultLoadBatchRows
	}
	if c.Inserts <= 0 {
		c.Inserts = DefaultLoadInserts
	}
	return nil
}

// LoadStats describes what Load wrote.
type LoadStats struct {
	Events  int
	Visits  int
	Elapsed time.Duration
}

// EventsPerSecond is the load rate.
func (s LoadStats) EventsPerSecond() float64 { return float64(s.Events) / s.Elapsed.Seconds() }

// batchPreparer is the part of a ClickHouse connection (a *chdb.DB) Load inserts through.
type batchPreparer interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// Load writes exactly cfg.Events realistic events of one site between From
// and To into the events table through ingest's writer, as enriched rows:
// visits with several pageviews and bounces, entry and exit pages, sources and
// campaigns, places, browsers, custom events with properties, a sign-up funnel
// and revenue, spread over the days and hours by the same rhythm as the live
// demo. One goroutine generates while another inserts.
func Load(ctx context.Context, conn batchPreparer, cfg LoadConfig) (LoadStats, error) {
	if err := cfg.withDefaults(); err != nil {
		return LoadStats{}, err
	}
	began := time.Now()
	// Only the shares of the rate matter for the times; the visits a day
	// size the users' cohorts.
	perVisit := loadEventsPerVisit
	if cfg.Engagement {
		perVisit = loadEngagedEventsPerVisit
	}
	g := newGenerator(cfg.Hostname, cfg.Seed, float64(cfg.Events)/perVisit/cfg.To.Sub(cfg.From).Hours()*24, cfg.Engagement)
	o := owner{tenant: cfg.Tenant, site: cfg.Site}
	w := ingest.NewWriter(conn)

	// The share of the events in each slot follows the rhythm's rate.
	var slots []time.Time
	var weights []float64
	var total float64
	for t := cfg.From; t.Before(cfg.To); t = t.Add(loadSlot) {
		length := min(loadSlot, cfg.To.Sub(t))
		rate, _, _ := g.rhythm.rate(t.Add(length / 2))
		slots = append(slots, t)
		weights = append(weights, rate*length.Seconds())
		total += rate * length.Seconds()
	}

	// Blocks go round: the generator fills one while the inserts send the others.
	full := make(chan []ingest.Event)
	free := make(chan []ingest.Event, cfg.Inserts+1)
	for range cfg.Inserts + 1 {
		free <- make([]ingest.Event, 0, cfg.BatchRows)
	}
	var stats LoadStats
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		defer close(full)
		r := rand.New(rand.NewPCG(cfg.Seed, 0x6c6f6164))
		var (
			v       visit
			emitted int
			cum     float64
			batch   = <-free
		)
		for i, start := range slots {
			cum += weights[i]
			target := int(float64(cfg.Events) * cum / total)
			if i == len(slots)-1 {
				target = cfg.Events
			}
			length := min(loadSlot, cfg.To.Sub(start))
			for emitted < target {
				at := start.Add(time.Duration(r.Int64N(int64(length))))
				g.next(r, at, &v)
				before := len(batch)
				batch = g.rows(o, &v, cfg.To, batch)
				if n := emitted + len(batch) - before; n > cfg.Events {
					batch = batch[:len(batch)-(n-cfg.Events)]
				}
				emitted += len(batch) - before
				stats.Visits++
				if len(batch) >= cfg.BatchRows-maxPages*4 || emitted == cfg.Events {
					select {
					case full <- batch:
					case <-ctx.Done():
						return ctx.Err()
					}
					select {
					case batch = <-free:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
		}
		stats.Events = emitted
		return nil
	})
	var (
		mu               sync.Mutex
		written, reached int // events committed; tenths reported
	)
	for range cfg.Inserts {
		eg.Go(func() error {
			for batch := range full {
				if err := w.WriteEvents(ctx, batch); err != nil {
					return fmt.Errorf("demo: load: %w", err)
				}
				mu.Lock()
				written += len(batch)
				if tenth := written * 10 / cfg.Events; cfg.Progress != nil && tenth > reached && tenth < 10 {
					reached = tenth
					el := time.Since(began)
					fmt.Fprintf(cfg.Progress, "demo: loaded %d of %d events (%d%%) in %s, %.0f events/s\n",
						written, cfg.Events, tenth*10, el.Round(100*time.Millisecond), float64(written)/el.Seconds())
				}
				mu.Unlock()
				// Strings and property slices are shared with the model;
				// clear the rest so the next fill starts clean.
				clear(batch)
				free <- batch[:0]
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return LoadStats{}, err
	}
	stats.Elapsed = time.Since(began)
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "demo: loaded %d events (%d visits) from %s to %s in %s: %.0f events/s\n",
			stats.Events, stats.Visits, cfg.From.Format(time.DateOnly), cfg.To.Format(time.DateOnly),
			stats.Elapsed.Round(100*time.Millisecond), stats.EventsPerSecond())
	}
	return stats, nil
}
