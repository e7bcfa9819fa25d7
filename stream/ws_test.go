package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

const dashboard = "https://app.pulse.test"

// liveEnv is a hub on a real auth.Store (real ClickHouse) served on 127.0.0.1.
type liveEnv struct {
	store *auth.Store
	hub   *Hub
	addr  string
}

func newLiveEnv(t testing.TB, cfg Config) *liveEnv {
	t.Helper()
	return newLiveEnvAt(t, cfg, dashboard)
}

// newLiveEnvAt is newLiveEnv with the dashboard at origin.
func newLiveEnvAt(t testing.TB, cfg Config, origin string) *liveEnv {
	t.Helper()
	db := chtest.Open(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := authtest.Store(t, db, auth.Config{DashboardOrigin: origin, Logger: quiet})
	cfg.Logger = quiet
	h := New(cfg, store, prometheus.NewRegistry())
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	h.Register(app)
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = h.Run(ctx) })
	wg.Go(func() { _ = app.Listener(ln) })
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		_ = app.ShutdownWithTimeout(5 * time.Second)
		cancel()
		wg.Wait()
	})
	return &liveEnv{store: store, hub: h, addr: ln.Addr().String()}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// tenant is one org with an owner, a site, and a read API key.
type tenant struct {
	org     auth.Org
	owner   auth.User
	site    auth.Site
	readKey string
}

func newTenant(t testing.TB, s *auth.Store, name string) tenant {
	t.Helper()
	base := authtest.NewTenant(t, s, name+".test")
	tn := tenant{org: base.Org, owner: base.Owner, site: base.Site}
	var err error
	if _, tn.readKey, err = s.CreateAPIKey(context.Background(), tn.org.ID, "read", []auth.Scope{auth.ScopeRead}, tn.owner.ID); err != nil {
		t.Fatal(err)
	}
	return tn
}

// liveFrame is any frame the server sends.
type liveFrame struct {
	Type    string    `json:"type"`
	Seq     uint64    `json:"seq"`
	Prev    uint64    `json:"prev"`
	Missed  uint64    `json:"missed"`
	State   *Snapshot `json:"state"`
	Changes *Delta    `json:"changes"`
}

type liveClient struct {
	t    testing.TB
	ws   *fws.Conn
	snap *Snapshot
	seq  uint64
}

// dial opens /v1/live; origin and cookie are sent when not empty.
func (e *liveEnv) dial(t testing.TB, origin, cookie string) (*fws.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if cookie != "" {
		h.Set("Cookie", auth.DefaultSessionCookie+"="+cookie)
	}
	ws, resp, err := fws.DefaultDialer.Dial("ws://"+e.addr+"/v1/live", h)
	if err == nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}

// subscribe sends auth (when token is set) and subscribe, and returns the
// first frame's close code (0 when a snapshot came).
func (e *liveEnv) subscribe(t testing.TB, ws *fws.Conn, token string, site uuid.UUID, views ...string) (*liveClient, int) {
	t.Helper()
	if token != "" {
		if err := ws.WriteJSON(map[string]any{"type": "auth", "token": token}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "site": site, "views": views}); err != nil {
		t.Fatal(err)
	}
	c := &liveClient{t: t, ws: ws}
	f, code := c.read(5 * time.Second)
	if code != 0 {
		return nil, code
	}
	if f.Type != "snapshot" || f.State == nil {
		t.Fatalf("first frame %+v, want a snapshot", f)
	}
	c.snap, c.seq = f.State, f.Seq
	return c, 0
}

// read returns the next frame, or the close code that ended the socket.
func (c *liveClient) read(timeout time.Duration) (liveFrame, int) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	var f liveFrame
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		var ce *fws.CloseError
		if errors.As(err, &ce) {
			return f, ce.Code
		}
		c.t.Fatalf("read: %v", err)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatal(err)
	}
	return f, 0
}

// until applies deltas until cond holds of the client's state, and returns
// how long that took.
func (c *liveClient) until(timeout time.Duration, cond func(*Snapshot) bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !cond(c.snap) {
		if time.Since(start) > timeout {
			c.t.Fatalf("state not reached within %v: %s", timeout, jsonOf(c.t, c.snap))
		}
		f, code := c.read(timeout)
		if code != 0 {
			c.t.Fatalf("closed with %d", code)
		}
		switch f.Type {
		case "delta":
			if f.Prev != c.seq {
				c.t.Fatalf("delta %d applies to %d, client is at %d", f.Seq, f.Prev, c.seq)
			}
			if err := c.snap.Apply(f.Changes); err != nil {
				c.t.Fatal(err)
			}
		case "snapshot":
			c.snap = f.State
		}
		c.seq = f.Seq
	}
	return time.Since(start)
}

// TestOnlineNowFollowsTrackerConnections: a subscriber sees online-now go up
// when a tracker connection opens, down at once when it closes, and down
// within the presence timeout when it goes silent.
//
// The bounds leave room for a loaded machine (a tick is 50 ms, the bounds
// seconds) and still tell "at once" (under half the presence timeout) from
// "at the presence timeout".
func TestOnlineNowFollowsTrackerConnections(t *testing.T) {
	const presence = 4 * time.Second
	e := newLiveEnv(t, Config{Tick: 50 * time.Millisecond, PresenceTimeout: presence})
	a := newTenant(t, e.store, "acme")
	ws, _, err := e.dial(t, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c, code := e.subscribe(t, ws, a.readKey, a.site.ID, "online")
	if code != 0 {
		t.Fatalf("subscribe closed with %d", code)
	}
	online := func(n int) func(*Snapshot) bool { return func(s *Snapshot) bool { return s.Online.Now == n } }
	if c.snap.Online.Now != 0 {
		t.Fatalf("online before any visitor: %d", c.snap.Online.Now)
	}
	e.hub.Connected(a.site.ID, 1)
	ev := page("/", 42, 1)
	ev.Conn = 1
	e.hub.Publish(a.site.ID, []Event{ev})
	if d := c.until(presence, online(1)); d > presence/2 {
		t.Errorf("online went up after %v, want at once (within %v)", d, presence/2)
	}
	e.hub.Disconnected(a.site.ID, 1)
	if d := c.until(presence, online(0)); d > presence/2 {
		t.Errorf("online went down %v after the visitor left, want at once (within %v)", d, presence/2)
	}
	e.hub.Connected(a.site.ID, 2) // then silent: no heartbeat
	c.until(presence, online(1))
	var silent time.Time
	for range 3 {
		e.hub.Heartbeat(a.site.ID, 2)
		silent = time.Now()
		time.Sleep(presence / 2)
	}
	if c.snap.Online.Now != 1 {
		t.Fatal("a connection with heartbeats went offline")
	}
	c.until(presence+5*time.Second, online(0))
	if d := time.Since(silent); d < presence || d > presence+3*time.Second {
		t.Errorf("silent visitor went offline %v after its last heartbeat, want the presence timeout %v (plus at most 3 s)", d, presence)
	}
}

// TestSubscribeScopes: a credential sees only the sites it may read.
func TestSubscribeScopes(t *testing.T) {
	e := newLiveEnv(t, Config{Tick: 50 * time.Millisecond})
	ctx := context.Background()
	a := newTenant(t, e.store, "acme")
	b := newTenant(t, e.store, "globex")
	a2, err := e.store.CreateSite(ctx, a.org.ID, auth.SiteInput{Domain: "acme2.test"})
	if err != nil {
		t.Fatal(err)
	}
	_, share, err := e.store.CreateShareLink(ctx, a.site.ID, "", time.Hour, a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, ingestKey, err := e.store.CreateAPIKey(ctx, a.org.ID, "ingest", []auth.Scope{auth.ScopeIngest}, a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	sessB, err := e.store.IssueSession(b.owner)
	if err != nil {
		t.Fatal(err)
	}
	sessA, err := e.store.IssueSession(a.owner)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		origin, cookie string
		token          string
		site           uuid.UUID
		want           int
	}{
		{name: "read key, own site", token: a.readKey, site: a.site.ID, want: 0},
		{name: "read key, other tenant's site", token: a.readKey, site: b.site.ID, want: CloseForbidden},
		{name: "read key, unknown site", token: a.readKey, site: uuid.New(), want: CloseForbidden},
		{name: "ingest key", token: ingestKey, site: a.site.ID, want: CloseForbidden},
		{name: "share link, its site", token: share, site: a.site.ID, want: 0},
		{name: "share link, same org's other site", token: share, site: a2.ID, want: CloseForbidden},
		{name: "share link, other tenant's site", token: share, site: b.site.ID, want: CloseForbidden},
		{name: "session cookie, own site", origin: dashboard, cookie: sessA.Token, site: a2.ID, want: 0},
		{name: "session cookie, other tenant's site", origin: dashboard, cookie: sessB.Token, site: a.site.ID, want: CloseForbidden},
		{name: "session token in auth frame", token: sessB.Token, site: b.site.ID, want: 0},
		{name: "cookie without the dashboard Origin is ignored", cookie: sessA.Token, site: a.site.ID, want: CloseAuthFailed},
		{name: "no credentials", site: a.site.ID, want: CloseAuthFailed},
		{name: "garbage token", token: "sk_nope", site: a.site.ID, want: CloseAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, _, err := e.dial(t, tt.origin, tt.cookie)
			if err != nil {
				t.Fatal(err)
			}
			_, code := e.subscribe(t, ws, tt.token, tt.site)
			if code != tt.want {
				t.Errorf("close code %d, want %d", code, tt.want)
			}
		})
	}
	t.Run("foreign origin refused before the upgrade", func(t *testing.T) {
		_, resp, err := e.dial(t, "https://evil.test", sessA.Token)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial from a foreign origin: %v %v, want 403", err, resp)
		}
	})
}

// TestShareLinkSeesOnlyItsSite: events of other sites never reach a
// share-link subscriber, and its token's expiry closes the socket with
// CloseTokenExpired.
func TestShareLinkSeesOnlyItsSite(t *testing.T) {
	e := newLiveEnv(t, Config{Tick: 50 * time.Millisecond})
	a := newTenant(t, e.store, "acme")
	b := newTenant(t, e.store, "globex")
	_, share, err := e.store.CreateShareLink(context.Background(), a.site.ID, "", 3*time.Second, a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := e.dial(t, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c, code := e.subscribe(t, ws, share, a.site.ID, "pages")
	if code != 0 {
		t.Fatalf("closed with %d", code)
	}
	e.hub.Publish(b.site.ID, []Event{page("/globex-secret", 1, 1)})
	e.hub.Publish(a.site.ID, []Event{page("/acme", 2, 2)})
	c.until(time.Second, func(s *Snapshot) bool { return len(s.Pages.Long) > 0 })
	if got := c.snap.Pages.Long; len(got) != 1 || got[0].Key != "/acme" {
		t.Fatalf("share link sees pages %v, want only /acme", got)
	}
	start := time.Now()
	for {
		f, code := c.read(6 * time.Second)
		if code != 0 {
			if code != CloseTokenExpired {
				t.Fatalf("closed with %d, want %d", code, CloseTokenExpired)
			}
			break
		}
		if f.Changes != nil && f.Changes.Pages != nil {
			for _, p := range f.Changes.Pages.Long {
				if p.Key != "/acme" {
					t.Fatalf("share link received %q", p.Key)
				}
			}
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("expired token closed after %v, want at its expiry (3 s)", d)
	}
}

// TestSSE: the SSE twin serves the same frames to an API-key client and
// refuses another tenant's site.
func TestSSE(t *testing.T) {
	e := newLiveEnv(t, Config{Tick: 50 * time.Millisecond})
	a := newTenant(t, e.store, "acme")
	b := newTenant(t, e.store, "globex")
	get := func(key string, site uuid.UUID) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+e.addr+"/v1/live/sse?site="+site.String()+"&views=online,pages", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := get(a.readKey, b.site.ID); r.StatusCode != http.StatusNotFound {
		t.Errorf("other tenant's site: %d, want 404", r.StatusCode)
	}
	if r := get("", a.site.ID); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no key: %d, want 401", r.StatusCode)
	}
	r := get(a.readKey, a.site.ID)
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("SSE answer %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(r.Body)
	next := func() (string, liveFrame) {
		var ev string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = line[7:]
			case strings.HasPrefix(line, "data: "):
				var f liveFrame
				if err := json.Unmarshal([]byte(line[6:]), &f); err != nil {
					t.Fatal(err)
				}
				return ev, f
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", liveFrame{}
	}
	ev, f := next()
	if ev != "snapshot" || f.State == nil || f.State.Pages == nil || f.State.Rates != nil {
		t.Fatalf("first event %q %+v, want a snapshot of online and pages only", ev, f)
	}
	snap := f.State
	e.hub.Publish(a.site.ID, []Event{page("/sse", 1, 1)})
	for len(snap.Pages.Long) == 0 {
		ev, f = next()
		if ev != "delta" {
			t.Fatalf("event %q, want delta", ev)
		}
		if err := snap.Apply(f.Changes); err != nil {
			t.Fatal(err)
		}
	}
	if snap.Pages.Long[0] != (Count{Key: "/sse", N: 1}) {
		t.Errorf("pages %v", snap.Pages.Long)
	}
}

// TestSinkOutlivesItsHandler: the hub may still end, interrupt or write to a
// subscriber after its WebSocket handler has returned (the housekeeper holds
// it while the client goes away). fasthttp then pools the connection wrapper
// it handed the handler, with no connection inside; the sink must hold the
// socket itself. (A fresh-clone CI run panicked in SetReadDeadline here.)
func TestSinkOutlivesItsHandler(t *testing.T) {
	e := newLiveEnv(t, Config{Tick: 50 * time.Millisecond})
	a := newTenant(t, e.store, "acme")
	ws, _, err := e.dial(t, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, code := e.subscribe(t, ws, a.readKey, a.site.ID, "online"); code != 0 {
		t.Fatalf("subscribe closed with %d", code)
	}
	var sink *wsSink
	e.hub.mu.Lock()
	for s := range e.hub.subs {
		sink, _ = s.out.(*wsSink)
	}
	e.hub.mu.Unlock()
	if sink == nil {
		t.Fatal("no WebSocket subscriber tracked")
	}
	_ = ws.Close()
	waitFor(t, 5*time.Second, func() bool {
		e.hub.mu.Lock()
		defer e.hub.mu.Unlock()
		return len(e.hub.subs) == 0
	})
	e.hub.wg.Wait() // the handler has returned; its wrapper is back in the pool
	sink.interrupt()
	sink.abort()
	sink.extend(&subscriber{}, time.Second)
	if err := sink.write([]byte("late"), time.Now().Add(time.Second)); err == nil {
		t.Error("a write to a socket whose handler has returned succeeded")
	}
}
