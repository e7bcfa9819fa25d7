package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// newAddrBudgetEnv serves POST /v1/events, Segment's endpoints and the
// WebSocket on one app on 127.0.0.1, behind the proxy middleware trusting
// 127.0.0.1 (so that X-Forwarded-For names the client), with a store whose
// per-address budget is addrEventsPerDay.
func newAddrBudgetEnv(t *testing.T, addrEventsPerDay uint64) (*formatsEnv, *wsEnv) {
	t.Helper()
	ctx := context.Background()
	db := chtest.Open(t)
	log := slog.New(slog.DiscardHandler)
	store := authtest.Store(t, db, auth.Config{Logger: log, AddressEventsPerDay: addrEventsPerDay})
	tn := authtest.NewTenant(t, store, "shop.example", testOrigin)
	org, err := store.SetQuota(ctx, tn.Org.ID, auth.Quota{EventsPerSecond: 10_000, EventsPerMonth: 1 << 40, MaxConnections: 50})
	if err != nil {
		t.Fatal(err)
	}
	_, ingestKey, err := store.CreateAPIKey(ctx, org.ID, "server", []auth.Scope{auth.ScopeIngest}, tn.Owner.ID)
	if err != nil {
		t.Fatal(err)
	}

	m := NewMetrics(prometheus.NewRegistry())
	b := NewBatcher(BatcherConfig{Rows: 1000, FlushInterval: 10 * time.Millisecond}, NewWriter(db).WithMeter(store), log, m)
	bctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(bctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-errc })

	proxies, err := auth.ParseProxies("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(proxies.Middleware())
	srv := NewServer(fastConfig, store, b, log, m)
	srv.Register(app)
	NewFormatsHandler(store, b, log, m).Register(app)
	sites := StaticSites{tn.Site.PublicKey: SiteOf(tn.Site)}
	app.Post("/v1/events", NewHTTPHandler(sites, b, log, m).WithQuotas(store).WithDedup(srv).PostEvents)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		_ = app.ShutdownWithTimeout(5 * time.Second)
		<-served
		_ = stop()
	})
	base := ln.Addr().String()
	return &formatsEnv{base: "http://" + base, db: db, store: store, org: org, site: tn.Site, ingestKey: ingestKey, flushBatcher: stop},
		&wsEnv{url: "ws://" + base + "/v1/ingest", db: db, store: store, org: org, site: tn.Site, srv: srv, b: b, m: m, stopBatcher: stop}
}

// secondsToMidnight is the Retry-After of a refusal at t by the daily
// budget: whole seconds to the next UTC midnight, rounded up.
func secondsToMidnight(t time.Time) int {
	t = t.UTC()
	next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
	return int(math.Ceil(next.Sub(t).Seconds()))
}

// A client address spends at most its daily budget of a tenant's events,
// over HTTP and the WebSocket together: beyond it, POST /v1/events answers
// 429 with Retry-After up to the next UTC midnight and the WebSocket closes
// 4429 address_events_per_day; the refused events are not stored and count
// as rejected. Other addresses (another IPv6 /64) keep their budget, and
// Segment's server-side senders, authenticated with a secret key, have none.
func TestAddressDailyBudgetOverHTTPAndWebSocket(t *testing.T) {
	const budget = 5
	e, ws := newAddrBudgetEnv(t, budget)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	// The budget starts again at UTC midnight: a run across it cannot see
	// its refusals.
	fatalf := func(format string, args ...any) {
		t.Helper()
		if now := time.Now().UTC().Truncate(24 * time.Hour); !now.Equal(day) {
			t.Skipf("ran across UTC midnight, where every budget starts again: "+format, args...)
		}
		t.Fatalf(format, args...)
	}
	list := func(r []json.RawMessage) string {
		parts := make([]string, len(r))
		for i := range r {
			parts[i] = string(r[i])
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	var refusedIDs []string
	post := func(from string, n int, want int) {
		t.Helper()
		raws, ids := testEvents(n)
		header := map[string]string{"Content-Type": "text/plain"}
		if from != "" {
			header["X-Forwarded-For"] = from
		}
		before := time.Now()
		status, body, h := e.do(t, "POST", "/v1/events?site="+e.site.PublicKey, list(raws), header)
		after := time.Now()
		if status != want {
			fatalf("POST of %d events from %q = %d %s, want %d", n, from, status, body, want)
		}
		if want != 429 {
			return
		}
		refusedIDs = append(refusedIDs, ids...)
		retry, _ := strconv.Atoi(h.Get("Retry-After"))
		if lo, hi := secondsToMidnight(after), secondsToMidnight(before); retry < lo || retry > hi {
			fatalf("Retry-After %q, want %d to %d s: until the next UTC midnight", h.Get("Retry-After"), lo, hi)
		}
		var answer struct {
			Error      string `json:"error"`
			RetryAfter int    `json:"retry_after"`
		}
		if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.Error != "over quota: "+auth.ReasonAddressEventsPerDay || answer.RetryAfter != retry {
			fatalf("429 answer %s, want the reason %s and retry_after %d", body, auth.ReasonAddressEventsPerDay, retry)
		}
	}

	post("192.0.2.1", budget, 202)
	post("192.0.2.1", 1, 429)
	post("2001:db8:1:2::1", budget, 202) // another address has its own budget
	post("2001:db8:1:2::9", 1, 429)      // which its /64 shares
	// Segment's libraries send from the tenant's own servers, with its secret key.
	segment := func(id string) string {
		return fmt.Sprintf(`{"type":"page","messageId":%q,"anonymousId":"a1","properties":{"url":"https://shop.example/s"}}`, id)
	}
	header := basic(e.ingestKey)
	header["X-Forwarded-For"] = "192.0.2.1"
	batch := `{"batch":[` + segment(uuid.NewString()) + "," + segment(uuid.NewString()) + "]}"
	if status, body, _ := e.do(t, "POST", "/v1/batch", batch, header); status != 200 {
		fatalf("Segment batch of 2 from an address over its budget = %d %s, want 200", status, body)
	}

	// The WebSocket's own address (127.0.0.1, no X-Forwarded-For).
	cl, _ := ws.connect(t, "")
	raws, _ := testEvents(budget + 1)
	cl.send(eventsFrame(1, raws[:budget]))
	if other := cl.waitAck(1, 30*time.Second); len(other) != 0 {
		fatalf("unexpected frames: %+v", other)
	}
	before := time.Now()
	cl.send(eventsFrame(2, raws[budget:]))
	f := cl.waitClose(30 * time.Second)
	after := time.Now()
	reason, secs, _ := strings.Cut(f.CloseText, " retry_after=")
	retry, _ := strconv.Atoi(secs)
	if f.CloseCode != CloseQuotaExceeded || reason != auth.ReasonAddressEventsPerDay || retry < secondsToMidnight(after) || retry > secondsToMidnight(before) {
		fatalf("an events frame beyond the address's budget: close %d %q, want %d %s retry_after=<seconds to UTC midnight>",
			f.CloseCode, f.CloseText, CloseQuotaExceeded, auth.ReasonAddressEventsPerDay)
	}
	var lastID struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raws[budget], &lastID)
	refusedIDs = append(refusedIDs, lastID.ID)
	post("", 1, 429) // HTTP from the WebSocket's address: one budget for both

	if err := e.flushBatcher(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stored := storedPerDay(t, e.db, e.org.ID)
	if total(stored) != 3*budget+2 {
		fatalf("stored %v, want %d events: the budgets' and Segment's", stored, 3*budget+2)
	}
	var refusedStored uint64
	if err := e.db.QueryRow(ctx, "SELECT count() FROM events WHERE tenant_id = toUUID(?) AND has(?, toString(event_id))",
		e.org.ID.String(), refusedIDs).Scan(&refusedStored); err != nil {
		t.Fatal(err)
	}
	if refusedStored != 0 || len(refusedIDs) != 4 {
		fatalf("%d of the %d refused events stored, want none of 4", refusedStored, len(refusedIDs))
	}
	if err := e.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	usage, err := e.store.Usage(ctx, e.org.ID, day, day)
	if err != nil {
		t.Fatal(err)
	}
	if len(usage) != 1 || usage[0].RejectedEvents != 4 || usage[0].Events != total(stored) {
		fatalf("usage %+v, want %d events and the 4 refused as rejected", usage, total(stored))
	}
}
