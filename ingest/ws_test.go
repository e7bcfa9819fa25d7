package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	dto "github.com/prometheus/client_model/go"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

const testOrigin = "https://shop.example"

// wsEnv is the ingest WebSocket on a real Fiber listener on 127.0.0.1, with a
// real auth store, batcher and ClickHouse.
type wsEnv struct {
	url         string // ws://127.0.0.1:PORT/v1/ingest
	db          *chdb.DB
	store       *auth.Store
	org         auth.Org
	site        auth.Site
	srv         *Server
	b           *Batcher
	m           *Metrics
	stopBatcher func() error
}

// newWSEnv starts the endpoint on a fresh chtest database.
func newWSEnv(t testing.TB, cfg Config, bcfg BatcherConfig) *wsEnv {
	t.Helper()
	return newWSEnvOn(t, cfg, bcfg, chtest.Open(t), nil)
}

// newWSEnvOn starts the endpoint with metadata in db and events written
// through writerDB (db when nil).
func newWSEnvOn(t testing.TB, cfg Config, bcfg BatcherConfig, db, writerDB *chdb.DB) *wsEnv {
	t.Helper()
	if writerDB == nil {
		writerDB = db
	}
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	// Every client comes from 127.0.0.1: room beyond one address's daily
	// budget, as the quota below leaves room beyond the tenant's.
	store := authtest.Store(t, db, auth.Config{Logger: log, AddressEventsPerDay: 1 << 40})
	tn := authtest.NewTenant(t, store, "shop.example", testOrigin)
	site := tn.Site
	org, err := store.SetQuota(ctx, tn.Org.ID, auth.Quota{EventsPerSecond: 10_000_000, EventsPerMonth: 1 << 40, MaxConnections: 50})
	if err != nil {
		t.Fatal(err)
	}

	m := NewMetrics(prometheus.NewRegistry())
	b := NewBatcher(bcfg, NewWriter(writerDB).WithMeter(store), log, m)
	bctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(bctx) }()
	stopBatcher := sync.OnceValue(func() error { cancel(); return <-errc })

	srv := NewServer(cfg, store, b, log, m)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	srv.Register(app)
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
		_ = stopBatcher()
	})
	return &wsEnv{url: "ws://" + ln.Addr().String() + "/v1/ingest", db: db, store: store, org: org, site: site,
		srv: srv, b: b, m: m, stopBatcher: stopBatcher}
}

// serverFrame is any frame the server sends, or a close (Type "close").
type serverFrame struct {
	Type         string `json:"type"`
	Seq          int64  `json:"seq"`
	Index        int    `json:"index"`
	Code         string `json:"code"`
	Field        string `json:"field"`
	Message      string `json:"message"`
	RetryAfterMS int64  `json:"retry_after_ms"`
	Session      string `json:"session"`
	Resume       string `json:"resume"`
	Resumed      bool   `json:"resumed"`
	LastSeq      int64  `json:"last_seq"`
	CloseCode    int    `json:"-"`
	CloseText    string `json:"-"`
}

// wsClient is a test client: a reader goroutine turns frames into a channel.
type wsClient struct {
	t      testing.TB
	c      *fws.Conn
	frames chan serverFrame
	wmu    sync.Mutex
}

func (e *wsEnv) dial(t testing.TB, key, origin string) (*wsClient, *http.Response, error) {
	return e.dialWith(t, key, origin, nil)
}

// dialWith is dial with a hook that configures the connection before its
// reader starts.
func (e *wsEnv) dialWith(t testing.TB, key, origin string, configure func(*fws.Conn)) (*wsClient, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := fws.DefaultDialer.Dial(e.url+"?site="+key, h)
	if err != nil {
		return nil, resp, err
	}
	if configure != nil {
		configure(c)
	}
	cl := &wsClient{t: t, c: c, frames: make(chan serverFrame, 1<<16)}
	go func() {
		defer close(cl.frames)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				var ce *fws.CloseError
				if errors.As(err, &ce) {
					cl.frames <- serverFrame{Type: "close", CloseCode: ce.Code, CloseText: ce.Text}
				}
				return
			}
			var f serverFrame
			if err := json.Unmarshal(data, &f); err != nil {
				cl.frames <- serverFrame{Type: "garbage", Message: string(data)}
				continue
			}
			cl.frames <- f
		}
	}()
	t.Cleanup(func() { _ = c.Close() })
	return cl, resp, nil
}

// connect dials with the right key and Origin and completes hello.
func (e *wsEnv) connect(t testing.TB, resume string) (*wsClient, serverFrame) {
	t.Helper()
	cl, _, err := e.dial(t, e.site.PublicKey, testOrigin)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	cl.send(map[string]any{"type": "hello", "v": 1, "sdk": "test", "sdk_version": "0", "resume": resume})
	w := cl.next(5 * time.Second)
	if w.Type != "welcome" || w.Session == "" || w.Resume == "" {
		t.Fatalf("answer to hello = %+v, want welcome", w)
	}
	return cl, w
}

func (cl *wsClient) send(v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.sendRaw(raw)
}

func (cl *wsClient) sendRaw(raw []byte) {
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	_ = cl.c.WriteMessage(fws.TextMessage, raw) // a failed write shows up as a close on the reader
}

// next returns the next frame, failing the test after timeout.
func (cl *wsClient) next(timeout time.Duration) serverFrame {
	cl.t.Helper()
	select {
	case f, ok := <-cl.frames:
		if !ok {
			return serverFrame{Type: "eof"}
		}
		return f
	case <-time.After(timeout):
		cl.t.Fatalf("no frame from the server within %s", timeout)
		return serverFrame{}
	}
}

// waitClose reads frames until the close and returns it.
func (cl *wsClient) waitClose(timeout time.Duration) serverFrame {
	cl.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f := cl.next(time.Until(deadline))
		if f.Type == "close" || f.Type == "eof" {
			return f
		}
	}
}

// waitAck reads frames until an ack of at least seq; it returns the other
// frames seen on the way.
func (cl *wsClient) waitAck(seq int64, timeout time.Duration) []serverFrame {
	_, other := cl.waitAckSeq(seq, timeout)
	return other
}

// waitAckSeq is waitAck that also returns the ack's seq.
func (cl *wsClient) waitAckSeq(seq int64, timeout time.Duration) (int64, []serverFrame) {
	cl.t.Helper()
	deadline := time.Now().Add(timeout)
	var other []serverFrame
	for {
		f := cl.next(time.Until(deadline))
		switch {
		case f.Type == "ack" && f.Seq >= seq:
			return f.Seq, other
		case f.Type == "ack", f.Type == "busy":
		case f.Type == "close" || f.Type == "eof":
			cl.t.Fatalf("connection closed (%d %q) before ack %d; frames: %+v", f.CloseCode, f.CloseText, seq, other)
		default:
			other = append(other, f)
		}
	}
}

// testEvents returns n valid pageview events with fresh ids, as JSON.
func testEvents(n int) ([]json.RawMessage, []string) {
	raws := make([]json.RawMessage, n)
	ids := make([]string, n)
	for i := range raws {
		ids[i] = uuid.NewString()
		raws[i] = json.RawMessage(fmt.Sprintf(`{"id":%q,"type":"page","url":"https://shop.example/p/%d?utm_source=ws","title":"Product","props":{"n":%d}}`, ids[i], i%100, i))
	}
	return raws, ids
}

func eventsFrame(seq int64, events []json.RawMessage) map[string]any {
	return map[string]any{"type": "events", "seq": seq, "events": events}
}

// storedCounts returns count() and uniqExact(event_id) of the site's rows after FINAL.
func (e *wsEnv) storedCounts(t testing.TB) (rows, distinct uint64) {
	t.Helper()
	ctx := context.Background()
	if err := e.db.Exec(ctx, "OPTIMIZE TABLE events FINAL"); err != nil {
		t.Fatal(err)
	}
	err := e.db.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM events FINAL WHERE tenant_id = toUUID(?) AND site_id = toUUID(?)",
		e.org.ID.String(), e.site.ID.String()).Scan(&rows, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// fastConfig lets one test client send as fast as it can.
var fastConfig = Config{FramesPerSecond: 1_000_000, FrameBurst: 1_000_000}

func TestWebSocketStoresEveryEventOnce(t *testing.T) {
	const total, perFrame = 100_000, 200
	env := newWSEnv(t, fastConfig, BatcherConfig{Rows: 10_000, FlushInterval: 50 * time.Millisecond})
	cl, w := env.connect(t, "")
	if w.LastSeq != 0 || w.Resumed {
		t.Fatalf("new session welcome = %+v, want last_seq 0 and not resumed", w)
	}
	raws, _ := testEvents(total)
	var seq int64
	for i := 0; i < total; i += perFrame {
		seq++
		cl.send(eventsFrame(seq, raws[i:i+perFrame]))
	}
	if other := cl.waitAck(seq, 60*time.Second); len(other) != 0 {
		t.Fatalf("unexpected frames: %+v", other[:min(3, len(other))])
	}
	rows, distinct := env.storedCounts(t)
	if rows != total || distinct != total {
		t.Fatalf("stored %d rows, %d distinct ids; want every one of %d events once", rows, distinct, total)
	}
	if got := gaugeValue(env.m.acksPending); got != 0 {
		t.Fatalf("acks pending = %v after the last ack, want 0", got)
	}
}

func TestWebSocketResumeResendsFromLastAck(t *testing.T) {
	const total, perFrame = 20_000, 100
	env := newWSEnv(t, fastConfig, BatcherConfig{Rows: 2_000, FlushInterval: 20 * time.Millisecond})
	raws, _ := testEvents(total)
	frames := total / perFrame

	cl, w := env.connect(t, "")
	// Send the first 120 frames, wait for some acks, then drop the connection
	// without a close while later frames are still in flight.
	var lastAck int64
	for seq := int64(1); seq <= 120; seq++ {
		cl.send(eventsFrame(seq, raws[(seq-1)*perFrame:seq*perFrame]))
		if seq == 100 {
			lastAck, _ = cl.waitAckSeq(1, 10*time.Second)
		}
	}
drain:
	for {
		select {
		case f := <-cl.frames:
			if f.Type == "ack" {
				lastAck = f.Seq
			}
		default:
			break drain
		}
	}
	_ = cl.c.NetConn().Close()
	if lastAck == 0 {
		t.Fatal("no ack before the drop")
	}

	cl2, w2 := env.connect(t, w.Resume)
	if !w2.Resumed || w2.Session != w.Session || w2.LastSeq < lastAck {
		t.Fatalf("resumed welcome = %+v; want session %s resumed with last_seq ≥ %d", w2, w.Session, lastAck)
	}
	// Resend everything after last_seq, including frames the first connection
	// had already sent (some of them committed but not acknowledged).
	for seq := w2.LastSeq + 1; seq <= int64(frames); seq++ {
		cl2.send(eventsFrame(seq, raws[(seq-1)*perFrame:seq*perFrame]))
	}
	cl2.waitAck(int64(frames), 30*time.Second)
	rows, distinct := env.storedCounts(t)
	if rows != total || distinct != total {
		t.Fatalf("stored %d rows, %d distinct ids after resume; want %d once", rows, distinct, total)
	}

	// A resume token of another site, or a damaged one, starts a new session.
	cl3, w3 := env.connect(t, w.Resume+"x")
	if w3.Resumed || w3.LastSeq != 0 || w3.Session == w.Session {
		t.Fatalf("damaged token welcome = %+v, want a new session", w3)
	}
	_ = cl3
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}

// TestFailedConnectionIsDropped: when a write fails (the peer is gone or too
// slow) the server drops the socket at once, and its handler returns, rather
// than waiting out the read timeout. fasthttp hands the handler a wrapper
// whose Close does nothing, so the socket underneath must be closed.
func TestFailedConnectionIsDropped(t *testing.T) {
	e := newWSEnv(t, Config{}, BatcherConfig{})
	cl, _ := e.connect(t, "")
	var c *wsConn
	e.srv.mu.Lock()
	for k := range e.srv.conns {
		c = k
	}
	e.srv.mu.Unlock()
	if c == nil {
		t.Fatal("no connection tracked after welcome")
	}
	c.fail()
	if f := cl.waitClose(5 * time.Second); f.Type != "eof" && f.Type != "close" {
		t.Fatalf("client saw %+v, want the connection gone", f)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.srv.mu.Lock()
		n := len(e.srv.conns)
		e.srv.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the handler of a failed connection still runs 5 s later")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
