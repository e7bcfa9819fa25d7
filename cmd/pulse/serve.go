package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/dashboard"
	"github.com/pulse-analytics/pulse/dashboard/web"
	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/ingest/enrich"
	"github.com/pulse-analytics/pulse/internal/chdb"
	sdkjs "github.com/pulse-analytics/pulse/sdk-js"
	"github.com/pulse-analytics/pulse/stream"
)

// serve runs the service until ctx ends, then shuts down in a fixed order:
// stop accepting requests and wait for those in flight → flush the batcher →
// flush usage counters → close ClickHouse → stop the managed ClickHouse (dev). stopSignals restores the
// default signal behaviour once shutdown starts, so a second Ctrl-C kills at once.
func serve(ctx context.Context, stopSignals func(), dev bool, o options, stdout io.Writer, log *slog.Logger) error {
	chURL, managed := o.clickhouse, "no"
	if dev && chURL == "" {
		// The managed server's data lives in the data directory, next to
		// the signing keys: the owner's only.
		if err := chdb.PrivateDir(o.data, log); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		srv, err := chdb.StartServer(ctx, chdb.ServerConfig{Dir: filepath.Join(o.data, "clickhouse"), Logger: log})
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.Stop(context.WithoutCancel(ctx)); err != nil {
				log.Error("stop clickhouse", "err", err)
			}
		}()
		chURL, managed = srv.URL(chdb.DefaultDatabase), "yes"
	}

	startCtx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	db, ms, applied, err := openMigrated(startCtx, chURL)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("clickhouse ready", "addr", db.Addr, "database", db.Database, "managed", managed, "migrations_applied", len(applied))

	store, err := openStore(startCtx, db, o, log)
	if err != nil {
		return err
	}
	enr, err := enrich.New(startCtx, db, enrich.Config{GeoIPPath: o.geoIPDB, Logger: log})
	if err != nil {
		return err
	}
	defer enr.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ingestMetrics := ingest.NewMetrics(reg)
	batcher := ingest.NewBatcher(ingest.BatcherConfig{Rows: o.batchRows, FlushInterval: o.batchInterval}, ingest.NewWriter(db).WithMeter(store), log, ingestMetrics)

	hub := stream.New(stream.Config{Tick: o.liveTick, PresenceTimeout: o.livePresence, Logger: log}, store, reg)
	hooks := ingest.Config{Enricher: enricher{enr}, DropBots: o.dropBots, Publisher: livePublisher{hub}, Presence: hub, MaxConnectionsPerAddress: o.addrConnections}
	if o.demo {
		hooks.Enricher = withDemoPlaces(hooks.Enricher) // demo visitors' places from their loopback addresses
	}
	ws := ingest.NewServer(hooks, store, batcher, log, ingestMetrics)
	tracker, err := sdkjs.New(sdkjs.Dist())
	if err != nil {
		return fmt.Errorf("sdk-js: read the tracker build: %w", err)
	}
	app := newApp(appDeps{
		db:         db,
		migrations: ms,
		registry:   reg,
		ingest:     ingest.NewHTTPHandler(storeSites{store}, batcher, log, ingestMetrics).WithHooks(hooks).WithQuotas(store).WithDedup(ws),
		ws:         ws,
		live:       hub,
		tracker:    tracker,
		formats:    ingest.NewFormatsHandler(store, batcher, log, ingestMetrics).WithHooks(hooks),
		api:        auth.NewAPI(store, log),
		proxies:    o.trustedProxies.p,
		log:        log,
	})
	lifecycle := dashboard.NewLifecycle(db, store, dashboard.LifecycleConfig{MaxRetentionDays: uint32(o.maxRetention), Logger: log})
	lifecycle.Register(app) // after the auth API, whose middleware authenticates /api/v1
	dashboard.NewAPI(dashboard.NewEngine(db, dashboard.Config{}), store, log).Register(app)
	ui, err := web.New(web.Dist())
	if err != nil {
		return fmt.Errorf("dashboard: read the web build: %w", err)
	}
	web.RegisterPeople(app, store)
	ui.Register(app) // last: its fallback answers client-side routes with the page

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	base := "http://" + ln.Addr().String()
	log.Info("pulse listening", "url", base, "version", version)
	stopDemo := func() {}
	if dev {
		demo, err := ensureDemo(startCtx, store, o.data, base)
		if err != nil {
			ln.Close()
			return err
		}
		demo.print(stdout, base)
		if o.demo {
			stopDemo = startDemoTraffic(ctx, db, store, demo, base, o.demoVisits, log)
			defer stopDemo()
		}
	}

	// Batching and the auth store outlive the signal: the batcher stops only once
	// no request can add events, the store once the batcher has flushed.
	batchCtx, stopBatching := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBatching()
	storeCtx, stopStore := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStore()
	storeDone := make(chan error, 1)
	go func() { storeDone <- store.Run(storeCtx) }() // joined below, after the errgroup
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return batcher.Run(batchCtx) })
	g.Go(func() error { return enr.Run(gctx) })
	g.Go(func() error { return hub.Run(gctx) })
	g.Go(func() error { return lifecycle.Run(gctx) })
	finalizer := dashboard.NewFinalizer(db, dashboard.FinalizerConfig{Logger: log})
	g.Go(func() error { return finalizer.Run(gctx) })
	g.Go(func() error {
		if err := app.Listener(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		stopSignals()
		log.Info("shutting down", "reason", context.Cause(gctx))
		// 0. Stop the demo's visitors (dev --demo); they close their ingest sockets themselves.
		stopDemo()
		// 1. Refuse new ingest sockets and close open ones with the going-away
		// code (the tracker resends what was not acknowledged); Fiber does not
		// close hijacked WebSocket connections itself.
		// Live subscribers are closed the same way, at the same time.
		wsCtx, cancel := context.WithTimeout(context.WithoutCancel(gctx), o.shutdownTimeout)
		liveErr := make(chan error, 1)
		go func() { liveErr <- hub.Shutdown(wsCtx) }() // joined just below
		wsErr := errors.Join(ws.Shutdown(wsCtx), <-liveErr)
		cancel()
		// 2. Stop accepting HTTP; wait for requests in flight, which may still add events.
		err := app.ShutdownWithTimeout(o.shutdownTimeout)
		// 3. Flush the batcher; Run returns when everything it held is written.
		stopBatching()
		return errors.Join(wsErr, err)
	})
	err = g.Wait()
	// 4. Flush usage counters and stop refreshing metadata.
	stopStore()
	if storeErr := <-storeDone; storeErr != nil && !errors.Is(storeErr, context.Canceled) {
		err = errors.Join(err, storeErr)
	}
	// 5. ClickHouse closes (and the managed server stops) in the deferred calls.
	if err != nil {
		return err
	}
	log.Info("pulse stopped")
	return nil
}

// openStore opens the tenancy store on db with the options' auth settings.
func openStore(ctx context.Context, db *chdb.DB, o options, log *slog.Logger) (*auth.Store, error) {
	return auth.Open(ctx, db, auth.Config{
		DataDir:             o.data,
		KeyFile:             o.keyFile,
		Issuer:              o.issuer,
		DashboardOrigin:     o.dashboardOrigin,
		AllowSignup:         o.allowSignup,
		AddressEventsPerDay: o.addrEventsPerDay,
		Logger:              log,
	})
}

// storeSites resolves ingest's public site keys through the tenancy store.
type storeSites struct{ s *auth.Store }

func (a storeSites) SiteByKey(key string) (ingest.Site, bool) {
	site, err := a.s.SiteByPublicKey(key)
	if err != nil {
		return ingest.Site{}, false
	}
	return ingest.SiteOf(site), true
}
