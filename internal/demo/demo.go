package demo

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/pulse-analytics/pulse/ingest"
)

// Demo defaults.
const (
	// DefaultVisitsPerDay gives a few to a few dozen visitors online at once,
	// following the time of day, and about 47,000 events a day (22,000 of
	// them engagement events).
	DefaultVisitsPerDay = 10_000
	// DefaultHistory is how far back the demo's history goes.
	DefaultHistory = 30 * 24 * time.Hour
	// DefaultMaxOnline bounds the live visits at once (a spike can bring many).
	DefaultMaxOnline = 300
	// DefaultHostname is the demo site's domain.
	DefaultHostname = "demo.localhost"
)

// Config configures the demo of `pulse dev --demo`. Zero fields take the defaults.
type Config struct {
	// Tenant and Site are the demo site's organization and id. Required.
	Tenant, Site uuid.UUID
	// SiteKey is the site's public key. Required by Run.
	SiteKey string
	// Hostname is the site's domain, the host of its page URLs. Default DefaultHostname.
	Hostname string
	// Server is Pulse's base URL (http://127.0.0.1:8080): live visitors
	// connect to its /v1/ingest. Required by Run.
	Server string
	// Origin is the Origin header of every live connection, one of the
	// site's allowed origins. Default Server.
	Origin string
	// VisitsPerDay is the mean number of visits a day, live and in the
	// history. Default DefaultVisitsPerDay.
	VisitsPerDay float64
	// History is how far back the back-fill reaches. Default DefaultHistory.
	History time.Duration
	// Seed makes the history. Default: from Site, so every start of the same
	// site makes the same history (the same event ids).
	Seed uint64
	// MaxOnline bounds the live visits at once. Default DefaultMaxOnline.
	MaxOnline int
	// Logger receives start, progress and failures. Default slog.Default().
	Logger *slog.Logger
	// Identity signs an identity token for a user of the site (as the
	// site's backend would; auth.SignIdentityToken), so that live visitors
	// who sign in are identified as in the history. Default: none, and live
	// visitors stay anonymous.
	Identity func(userID string) (string, error)
}

func (c *Config) withDefaults() error {
	if c.Tenant == uuid.Nil || c.Site == uuid.Nil {
		return errors.New("demo: Tenant and Site are required")
	}
	if c.Hostname == "" {
		c.Hostname = DefaultHostname
	}
	if c.Origin == "" {
		c.Origin = c.Server
	}
	if c.VisitsPerDay <= 0 {
		c.VisitsPerDay = DefaultVisitsPerDay
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	if c.Seed == 0 {
		c.Seed = binary.LittleEndian.Uint64(c.Site[:8]) | 1
	}
	if c.MaxOnline <= 0 {
		c.MaxOnline = DefaultMaxOnline
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// querier reads from ClickHouse (a *chdb.DB): which hours hold events.
type querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// eventWriter stores history rows (an *ingest.Writer).
type eventWriter interface {
	WriteEvents(ctx context.Context, events []ingest.Event) error
}

// Demo runs the demo site's traffic: it back-fills the history and keeps
// live visitors coming through the ingest WebSocket until its context ends.
type Demo struct {
	cfg Config
	db  querier
	w   eventWriter
	log *slog.Logger

	// Live counters.
	visits, sent, acked, rejected atomic.Int64
	online                        atomic.Int64
	failures                      atomic.Int64
	lastFailLog                   atomic.Int64 // unix nanoseconds
	// noBind is set once binding a visitor's own loopback address failed.
	noBind atomic.Bool
	// signFailed is set once an identity token could not be signed.
	signFailed atomic.Bool
}

// New returns the demo of one site. db answers which hours already hold
// events, w writes the history.
func New(cfg Config, db querier, w eventWriter) (*Demo, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return &Demo{cfg: cfg, db: db, w: w, log: cfg.Logger}, nil
}

// Run back-fills the history up to now (skipping hours that hold events, so a
// restart adds only what is missing) while live visitors come and go. It
// returns when ctx ends and every live visitor has closed its connection,
// which it does at once: call it before the ingest server shuts down. A
// failed back-fill is logged and leaves the live traffic running.
func (d *Demo) Run(ctx context.Context) error {
	if d.cfg.SiteKey == "" || d.cfg.Server == "" {
		return errors.New("demo: live traffic needs the site key and the server's URL")
	}
	now := time.Now().UTC()
	from := now.Add(-d.cfg.History)
	d.log.Info("demo traffic starting", "site", d.cfg.Site, "visits_per_day", d.cfg.VisitsPerDay, "history_from", from.Format(time.DateOnly))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		began := time.Now()
		st, err := d.Backfill(gctx, from, now)
		switch {
		case errors.Is(err, context.Canceled):
			d.log.Info("demo history interrupted; the next start writes the missing hours", "events", st.Events)
		case err != nil:
			d.log.Error("demo history failed; live traffic continues", "err", err)
		default:
			d.log.Info("demo history written", "events", st.Events, "visits", st.Visits, "hours", st.Hours,
				"hours_present", st.HoursPresent, "elapsed", time.Since(began).Round(time.Millisecond))
		}
		return nil
	})
	g.Go(func() error { return d.live(gctx) })
	return g.Wait()
}
