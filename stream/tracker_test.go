package stream_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
	"github.com/pulse-analytics/pulse/stream"
)

// publisher is the adapter cmd/pulse uses between ingest and the hub.
type publisher struct{ hub *stream.Hub }

func (p publisher) Publish(site ingest.Site, conn uint64, events []ingest.Event) {
	out := make([]stream.Event, len(events))
	for i, e := range events {
		out[i] = stream.Event{ID: e.ID, Type: e.Type, Name: e.Name, Pathname: e.Pathname, VisitorID: e.VisitorID,
			SessionID: e.SessionID, Conn: conn}
	}
	p.hub.Publish(site.ID, out)
}

// TestTrackerPresenceEndToEnd: a tracker connected to the real ingest
// WebSocket (protocol v1) and a dashboard subscribed to the live WebSocket:
// online-now goes up when the tracker connects, down at once when it
// closes, and down within the presence timeout when it goes silent (stops
// answering pings).
//
// The bounds leave room for a loaded machine and still tell "at once" (under
// half the presence timeout) from "at the presence timeout".
func TestTrackerPresenceEndToEnd(t *testing.T) {
	const presence = 4 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	db := chtest.Open(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := authtest.Store(t, db, auth.Config{Logger: quiet})
	tn := authtest.NewTenant(t, store, "acme.test")
	owner, org, site := tn.Owner, tn.Org, tn.Site
	_, readKey, err := store.CreateAPIKey(ctx, org.ID, "read", []auth.Scope{auth.ScopeRead}, owner.ID)
	if err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	hub := stream.New(stream.Config{Tick: 50 * time.Millisecond, PresenceTimeout: presence, Logger: quiet}, store, reg)
	m := ingest.NewMetrics(reg)
	batcher := ingest.NewBatcher(ingest.BatcherConfig{FlushInterval: 100 * time.Millisecond}, ingest.NewWriter(db), quiet, m)
	srv := ingest.NewServer(ingest.Config{Publisher: publisher{hub}, Presence: hub,
		PingInterval: 300 * time.Millisecond, ReadTimeout: 10 * time.Second}, store, batcher, quiet, m)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	srv.Register(app)
	hub.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = hub.Run(ctx) })
	wg.Go(func() { _ = batcher.Run(ctx) })
	wg.Go(func() { _ = app.Listener(ln) })
	defer func() {
		_ = srv.Shutdown(context.Background())
		_ = hub.Shutdown(context.Background())
		_ = app.ShutdownWithTimeout(5 * time.Second)
		cancel()
		wg.Wait()
	}()
	addr := ln.Addr().String()

	// The dashboard.
	dash, _, err := fws.DefaultDialer.Dial("ws://"+addr+"/v1/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dash.Close()
	_ = dash.WriteJSON(map[string]any{"type": "auth", "token": readKey})
	_ = dash.WriteJSON(map[string]any{"type": "subscribe", "site": site.ID, "views": []string{"online", "pages"}})
	var snap *stream.Snapshot
	var seq uint64
	read := func() {
		_ = dash.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f struct {
			Type    string           `json:"type"`
			Seq     uint64           `json:"seq"`
			Prev    uint64           `json:"prev"`
			State   *stream.Snapshot `json:"state"`
			Changes *stream.Delta    `json:"changes"`
		}
		if err := dash.ReadJSON(&f); err != nil {
			t.Fatalf("dashboard: %v", err)
		}
		switch f.Type {
		case "snapshot":
			snap = f.State
		case "delta":
			if f.Prev != seq {
				t.Fatalf("delta from %d, dashboard at %d", f.Prev, seq)
			}
			if err := snap.Apply(f.Changes); err != nil {
				t.Fatal(err)
			}
		}
		seq = f.Seq
	}
	read()
	online := func(n int, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for snap.Online.Now != n {
			if time.Since(start) > within {
				t.Fatalf("online = %d, want %d within %v", snap.Online.Now, n, within)
			}
			read()
		}
		return time.Since(start)
	}

	// The tracker: protocol v1 over the real ingest endpoint.
	dialTracker := func() *fws.Conn {
		h := http.Header{}
		h.Set("Origin", "https://acme.test")
		c, _, err := fws.DefaultDialer.Dial("ws://"+addr+"/v1/ingest?site="+site.PublicKey, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteJSON(map[string]any{"type": "hello", "v": 1}); err != nil {
			t.Fatal(err)
		}
		var w struct{ Type string }
		if err := c.ReadJSON(&w); err != nil || w.Type != "welcome" {
			t.Fatalf("welcome: %v %v", w, err)
		}
		return c
	}
	tracker := dialTracker()
	if err := tracker.WriteJSON(map[string]any{"type": "events", "seq": 1, "events": []map[string]any{
		{"id": uuid.NewString(), "type": "page", "url": "https://acme.test/pricing"}}}); err != nil {
		t.Fatal(err)
	}
	online(1, presence)
	for len(snap.Pages.Long) == 0 {
		read()
	}
	if p := snap.Pages.Long[0]; p.Key != "/pricing" || p.N != 1 {
		t.Errorf("pages %v, want /pricing once", snap.Pages.Long)
	}
	// Keep it alive (reading answers pings) past the presence timeout.
	alive := make(chan struct{})
	go func() { // owned: waits on alive below
		defer close(alive)
		_ = tracker.SetReadDeadline(time.Now().Add(2 * presence))
		for {
			if _, _, err := tracker.ReadMessage(); err != nil {
				return // the deadline: the tracker leaves
			}
		}
	}()
	start := time.Now()
	for time.Since(start) < 2*presence-200*time.Millisecond {
		read()
		if snap.Online.Now != 1 {
			t.Fatalf("a tracker answering pings went offline after %v", time.Since(start))
		}
	}
	<-alive
	_ = tracker.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(fws.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	_ = tracker.Close()
	if d := online(0, presence); d > presence/2 {
		t.Errorf("online went down %v after the tracker left", d)
	}

	// A tracker that goes silent: connected, then it stops reading (no pongs).
	silent := dialTracker()
	defer silent.Close()
	online(1, presence)
	since := time.Now()
	d := online(0, presence+5*time.Second)
	if total := time.Since(since); total > presence+3*time.Second {
		t.Errorf("silent tracker went offline after %v (%v of reading), want within the presence timeout %v plus 3 s", total, d, presence)
	}
}
