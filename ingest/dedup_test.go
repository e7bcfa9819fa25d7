package ingest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// TestIDsOfAFailedAddAreNotSeen: a WebSocket frame waits for room in a full
// batcher, and its connection ends meanwhile, so the batcher never takes its
// events. The same events posted later to POST /v1/events (the tracker's
// fallback) must then be stored: a 202 for ids that only looked seen would
// report as accepted events nothing holds.
func TestIDsOfAFailedAddAreNotSeen(t *testing.T) {
	const perFrame = 10
	rawURL := chtest.URL(t)
	ctx := context.Background()
	db, err := chdb.Open(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The writer reaches ClickHouse through a proxy the test can cut, so the
	// batcher's insert fails and is retried until the proxy is restored.
	u, _ := url.Parse(rawURL)
	proxy := newTCPProxy(t, db.Addr)
	u.Host = proxy.addr
	writerDB, err := chdb.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { writerDB.Close() })
	cfg := Config{FramesPerSecond: 1000, FrameBurst: 1000, BusyAfter: 10 * time.Millisecond, PingInterval: 20 * time.Millisecond}
	env := newWSEnvOn(t, cfg, BatcherConfig{Rows: perFrame, FlushInterval: 10 * time.Millisecond,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, InsertTimeout: time.Second}, db, writerDB)

	proxy.cut()
	cl, _ := env.connect(t, "")
	// Frame 1 fills a block, whose insert starts and keeps failing; frame 2
	// fills the next block; frame 3 waits for room, and the client is told busy.
	var held []json.RawMessage
	for seq := int64(1); seq <= 2; seq++ {
		raws, _ := testEvents(perFrame)
		held = append(held, raws...)
		cl.send(eventsFrame(seq, raws))
	}
	waiting, waitingIDs := testEvents(perFrame)
	cl.send(eventsFrame(3, waiting))
	if f := cl.next(10 * time.Second); f.Type != "busy" {
		t.Fatalf("got %+v, want busy: frame 3 should wait for room in the batcher", f)
	}

	// The socket ends while frame 3 waits; the server notices at its next ping.
	_ = cl.c.NetConn().Close()
	deadline := time.Now().Add(10 * time.Second)
	for env.openConns() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the server still serves the closed connection after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	proxy.restore(t)

	// The tracker falls back to HTTP with the events it was never acknowledged.
	h := NewHTTPHandler(StaticSites{env.site.PublicKey: SiteOf(env.site)}, env.b, slog.New(slog.DiscardHandler), env.m).WithDedup(env.srv)
	app := fiber.New()
	app.Post("/v1/events", h.PostEvents)
	body, _ := json.Marshal(waiting)
	req := httptest.NewRequest("POST", "/v1/events?site="+env.site.PublicKey, strings.NewReader(string(body)))
	resp, err := app.Test(req, 30_000)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 {
		t.Fatalf("POST /v1/events = %d %s, want 202", resp.StatusCode, answer)
	}

	if err := env.stopBatcher(); err != nil { // writes everything the batcher holds
		t.Fatal(err)
	}
	var stored uint64
	if err := db.QueryRow(ctx, "SELECT uniqExact(event_id) FROM events WHERE has(?, toString(event_id))", waitingIDs).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != perFrame {
		t.Fatalf("POST /v1/events answered %d %s, and %d of its %d events are stored", resp.StatusCode, answer, stored, perFrame)
	}
	rows, distinct := env.storedCounts(t)
	if want := uint64(len(held) + perFrame); rows != want || distinct != want {
		t.Fatalf("stored %d rows (%d distinct), want the %d events of frames 1 and 2 and the post, once each", rows, distinct, want)
	}
}

// openConns is the number of ingest connections the server still serves.
func (e *wsEnv) openConns() int {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	return len(e.srv.conns)
}
