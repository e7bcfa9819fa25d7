package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/internal/chdb"
)

// The development site of `pulse dev`, until the tenancy model creates real ones.
const devSiteKey = "pk_dev"

var (
	devTenantID = uuid.MustParse("00000000-0000-4000-8000-000000000001")
	devSiteID   = uuid.MustParse("00000000-0000-4000-8000-000000000002")
)

// serve runs the service until ctx ends, then shuts down in a fixed order:
// stop accepting requests and wait for those in flight → flush the batcher →
// close ClickHouse → stop the managed ClickHouse (dev). stopSignals restores the
// default signal behaviour once shutdown starts, so a second Ctrl-C kills at once.
func serve(ctx context.Context, stopSignals func(), dev bool, o options, stdout io.Writer, log *slog.Logger) error {
	chURL, managed := o.clickhouse, "no"
	if dev && chURL == "" {
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

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ingestMetrics := ingest.NewMetrics(reg)
	batcher := ingest.NewBatcher(ingest.BatcherConfig{Rows: o.batchRows, FlushInterval: o.batchInterval}, ingest.NewWriter(db), log, ingestMetrics)

	sites := ingest.StaticSites{}
	if dev {
		sites[devSiteKey] = ingest.Site{TenantID: devTenantID, ID: devSiteID, PublicKey: devSiteKey}
	}
	app := newApp(appDeps{
		db:         db,
		migrations: ms,
		registry:   reg,
		ingest:     ingest.NewHTTPHandler(sites, batcher, log, ingestMetrics),
		log:        log,
	})

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	base := "http://" + ln.Addr().String()
	log.Info("pulse listening", "url", base, "version", version)
	if dev {
		fmt.Fprintf(stdout, "\nPulse is running at %s\n  health:  %s/readyz\n  metrics: %s/metrics\n  send an event to the development site:\n    curl -X POST '%s/v1/events?site=%s' -d '{\"type\":\"page\",\"url\":\"https://example.com/\"}'\nCtrl-C stops Pulse and the ClickHouse it started.\n\n",
			base, base, base, base, devSiteKey)
	}

	// Batching outlives the signal: it is stopped only once no request can add events.
	batchCtx, stopBatching := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBatching()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return batcher.Run(batchCtx) })
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
		// 1. Stop accepting; wait for requests in flight, which may still add events.
		err := app.ShutdownWithTimeout(o.shutdownTimeout)
		// 2. Live sockets are closed here with a going-away code once they exist.
		// 3. Flush the batcher; Run returns when everything it held is written.
		stopBatching()
		return err
	})
	err = g.Wait()
	// 4. ClickHouse closes (and the managed server stops) in the deferred calls.
	if err != nil {
		return err
	}
	log.Info("pulse stopped")
	return nil
}
