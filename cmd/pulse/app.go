package main

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	sdkjs "github.com/pulse-analytics/pulse/sdk-js"
	"github.com/pulse-analytics/pulse/stream"
)

// HTTP server limits.
const (
	// bodyLimit is the largest request body the server reads at all; endpoints
	// enforce their own smaller limits with a clear error.
	bodyLimit = 4 << 20
	// readTimeout, writeTimeout and idleTimeout bound slow or idle HTTP clients.
	readTimeout  = 30 * time.Second
	writeTimeout = 30 * time.Second
	idleTimeout  = 120 * time.Second
	// readyTimeout bounds the ClickHouse checks of /readyz.
	readyTimeout = 2 * time.Second
)

type appDeps struct {
	db         *chdb.DB
	migrations []chdb.Migration
	registry   *prometheus.Registry
	ingest     *ingest.HTTPHandler
	ws         *ingest.Server
	formats    *ingest.FormatsHandler
	live       *stream.Hub
	tracker    *sdkjs.Handler
	api        *auth.API
	proxies    auth.Proxies
	log        *slog.Logger
}

// newApp builds the HTTP API: health, readiness, metrics and ingest.
func newApp(d appDeps) *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "pulse",
		DisableStartupMessage: true,
		BodyLimit:             bodyLimit,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		// Release fasthttp's read buffer once a request is read (and before a
		// WebSocket upgrade hands the connection over): an idle ingest
		// connection otherwise keeps it, 4 KiB, for its whole life.
		ReduceMemoryUsage: true,
		// Fiber believes forwarding headers from any peer unless this is set,
		// and then from no one: the client's address and scheme come from
		// auth.ClientAddr and auth.ClientScheme, which read them from the
		// trusted proxies only.
		EnableTrustedProxyCheck: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			code := fiber.StatusInternalServerError
			if fe, ok := err.(*fiber.Error); ok {
				code = fe.Code
			} else {
				d.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
				err = fiber.ErrInternalServerError
			}
			return c.Status(code).JSON(fiber.Map{"error": err.Error()})
		},
	})
	app.Use(d.proxies.Middleware())
	app.Use(httpMetrics(d.registry))

	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
		defer cancel()
		latest, reason := ready(ctx, d)
		if reason != "" {
			// Anyone may ask: the answer says no more than "not ready". The
			// reason (the database's address, a driver error) is for the
			// operator, in the log.
			d.log.Warn("not ready", "reason", reason)
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready"})
		}
		return c.JSON(fiber.Map{"status": "ready", "schema_version": latest})
	})
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{Registry: d.registry})))
	app.Post("/v1/events", d.ingest.PostEvents)
	app.Options("/v1/events", d.ingest.Preflight)
	d.ws.Register(app)
	d.formats.Register(app)
	d.live.Register(app)
	d.tracker.Register(app)
	d.api.Register(app)
	return app
}

// ready checks that ClickHouse answers and the schema is current. It returns
// the schema version, or why the server is not ready.
func ready(ctx context.Context, d appDeps) (int, string) {
	if err := d.db.Ping(ctx); err != nil {
		return 0, "clickhouse at " + d.db.Addr + " does not answer: " + err.Error()
	}
	st, err := d.db.Status(ctx, d.migrations)
	if err != nil {
		return 0, "cannot read the schema version: " + err.Error()
	}
	if !st.Current() {
		return 0, "schema migrations " + strconv.Quote(fmtInts(st.Pending)) + " are not applied: run pulse migrate"
	}
	return st.Latest, ""
}

func fmtInts(v []int) string {
	s := ""
	for i, n := range v {
		if i > 0 {
			s += ","
		}
		s += strconv.Itoa(n)
	}
	return s
}

// httpMetrics counts requests and their durations by method, route and status.
func httpMetrics(reg prometheus.Registerer) fiber.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pulse_http_requests_total", Help: "HTTP requests by method, route pattern and status.",
	}, []string{"method", "route", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "pulse_http_request_duration_seconds", Help: "HTTP request duration by method and route pattern.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"method", "route"})
	reg.MustRegister(requests, duration)
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		status := c.Response().StatusCode()
		if fe, ok := err.(*fiber.Error); ok {
			status = fe.Code
		} else if err != nil {
			status = fiber.StatusInternalServerError
		}
		// Label values outlive the request, so none of them may be a string
		// Fiber gives out: those point into buffers it reuses for later
		// requests (the app is not Immutable), and a stored "GET" would turn
		// into "OPT" under the next OPTIONS request, two series would share
		// their labels, and /metrics would answer 500 from then on. The route
		// is the pattern the route was registered with, the method a
		// constant (methodLabel), the status a new string.
		route := c.Route().Path
		if status == fiber.StatusNotFound && route == "/" && c.Path() != "/" {
			route = "unmatched" // keep unknown paths out of the label set
		}
		method := methodLabel(c.Method())
		requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return err
	}
}

// otherMethod is the method label of a request whose method is not one Fiber
// routes, so that clients cannot grow the label set.
const otherMethod = "other"

// methodLabel returns m as one of Fiber's own method strings (the methods
// it routes, fiber.DefaultMethods) or otherMethod: never m itself, which
// points into a buffer Fiber reuses.
func methodLabel(m string) string {
	for _, known := range fiber.DefaultMethods {
		if m == known {
			return known
		}
	}
	return otherMethod
}
