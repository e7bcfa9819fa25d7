package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/demo"
)

// demoIdentityLifetime is how long a demo visitor's identity token is valid:
// longer than a visit.
const demoIdentityLifetime = time.Hour

// startDemoTraffic starts `pulse dev --demo`'s traffic for the demo site: 30
// days of history written into ClickHouse, and live visitors that connect to
// base's /v1/ingest like trackers in browser tabs (docs/demo.md). stop ends
// the traffic and waits until every visitor has closed its connection; call
// it before the ingest server shuts down. It is safe to call more than once.
func startDemoTraffic(ctx context.Context, db *chdb.DB, store *auth.Store, login demoLogin, base string, visitsPerDay int, log *slog.Logger) (stop func()) {
	site := ingest.SiteOf(login.site)
	d, err := demo.New(demo.Config{
		Tenant:       site.TenantID,
		Site:         site.ID,
		SiteKey:      site.PublicKey,
		Hostname:     login.site.Domain,
		Server:       base,
		VisitsPerDay: float64(visitsPerDay),
		Logger:       log,
		// Signed-in visitors are identified as the site's backend would do
		// it, with the site's current identity secret.
		Identity: func(userID string) (string, error) {
			s, err := store.Site(login.site.ID)
			if err != nil {
				return "", err
			}
			return auth.SignIdentityToken(s, userID, demoIdentityLifetime)
		},
		// The history is stored without passing ingest; the writer meters
		// what it stores in the org's usage, as ingest's does.
	}, db, ingest.NewWriter(db).WithMeter(store))
	if err != nil {
		log.Error("demo traffic not started", "err", err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // joined by stop
		defer close(done)
		if err := d.Run(ctx); err != nil {
			log.Error("demo traffic stopped", "err", err)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// demoPlaces gives the demo's live visitors their place where enrichment
// found none: each visitor connects from its own loopback address, which
// says where the demo put it (internal/demo, Locator). Only `pulse dev
// --demo` installs it; any other address is left as enrichment made it.
type demoPlaces struct {
	next ingest.Enricher
	loc  demo.Locator
}

func withDemoPlaces(next ingest.Enricher) demoPlaces {
	return demoPlaces{next: next, loc: demo.NewLocator()}
}

func (p demoPlaces) Enrich(events []ingest.Event, c ingest.Client) {
	p.next.Enrich(events, c)
	loc, ok := p.loc.Locate(c.IP)
	if !ok {
		return
	}
	for i := range events {
		if ev := &events[i]; ev.Country == "" {
			ev.Country, ev.Region, ev.City = loc.Country, loc.Region, loc.City
		}
	}
}
