package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
	"github.com/pulse-analytics/pulse/stream"
)

// Event → dashboard latency over the real path: the live figures
// of the hub alone (fan-out, memory) are BenchmarkLive of package stream.
const (
	// liveBenchConns tracker connections send the load.
	liveBenchConns = 16
	// liveBenchFrameEvents is the events per frame of the rate probe (the
	// most that fits a 64 KiB frame with room to spare).
	liveBenchFrameEvents = 250
	// liveBenchProbeFrames frames per connection make up the rate probe.
	liveBenchProbeFrames = 60
	// liveBenchWindow is the most unacknowledged frames per connection.
	liveBenchWindow = 64
	// liveBenchFPS is the frames per second each connection sends at most
	// (ingest allows 50 with bursts of 100).
	liveBenchFPS = 40
	// liveBenchDuration is how long the half-rate load runs.
	liveBenchDuration = 15 * time.Second
	// liveBenchUA is a browser's user agent: bots are left out of the live view.
	liveBenchUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// BenchmarkLive measures the time from a tracker client sending an event to
// a dashboard receiving the delta that holds it: the real `pulse dev`
// binary (its own process, the test ClickHouse, the default 250 ms tick);
// liveBenchConns tracker-like clients send pageviews over WS /v1/ingest (a
// browser's user agent and the site's Origin, so they pass enrichment and bot
// filtering), and a dashboard subscribed to WS /v1/live (view feed, read
// API key) reads each delta's feed, in which the live state samples at most
// 20 events a second. Each event's path carries its frame's intended send
// time (open-model load: a frame every 1/liveBenchFPS s per connection
// whatever the server does), and the latency is the dashboard's receive
// time minus that.
//
// The load is half of the maximum ingest rate, measured first in the same
// run: liveBenchConns connections send liveBenchProbeFrames frames of
// liveBenchFrameEvents events each, at most liveBenchWindow unacknowledged and liveBenchFPS a second, and the rate is the
// events acknowledged (committed to ClickHouse) per second.
//
// Figures: EventToDashboardP50Ms and P99Ms, against the tick they ran under.
func BenchmarkLive(b *testing.B) {
	db := chtest.Open(b)
	dbURL := db.URL()
	data := b.TempDir()
	// Every connection comes from 127.0.0.1: room beyond one address's daily budget.
	p := startPulse(b, nil, "dev", "--clickhouse", dbURL, "--data", data, "--address-events-per-day", "1000000000000", "--address-connections", "1000000")
	p.waitReady(b)
	publicKey := p.siteKey(b)
	env := map[string]string{"PULSE_CLICKHOUSE": dbURL, "PULSE_DATA": data}
	admin := func(out any, args ...string) {
		b.Helper()
		var buf strings.Builder
		if err := run(context.Background(), append([]string{"admin"}, append(args, "--json")...), func(k string) string { return env[k] }, &buf); err != nil {
			b.Fatalf("pulse admin %s: %v", strings.Join(args, " "), err)
		}
		if out != nil {
			if err := json.Unmarshal([]byte(buf.String()), out); err != nil {
				b.Fatalf("pulse admin %s: %v: %s", strings.Join(args, " "), err, buf.String())
			}
		}
	}
	var orgs []struct{ ID string }
	admin(&orgs, "org", "list")
	admin(nil, "org", "quota", "--org", orgs[0].ID, "--events-per-second", "10000000", "--max-connections", "1000")
	var sites []struct {
		ID        string `json:"id"`
		PublicKey string `json:"public_key"`
	}
	admin(&sites, "site", "list", "--org", orgs[0].ID)
	siteID := ""
	for _, s := range sites {
		if s.PublicKey == publicKey {
			siteID = s.ID
		}
	}
	var key struct{ Secret string }
	admin(&key, "key", "create", "--org", orgs[0].ID, "--name", "live bench", "--scopes", "read")

	wsBase := strings.Replace(p.base, "http://", "ws://", 1)
	dash := liveDashboard(b, wsBase, key.Secret, siteID)
	defer dash.close()

	// The maximum ingest rate of this run.
	maxRate := liveProbeRate(b, wsBase+"/v1/ingest?site="+publicKey, p.base)
	rate := maxRate / 2

	// Event → dashboard at half that rate.
	dash.reset()
	sent, busies := liveOpenLoad(b, wsBase+"/v1/ingest?site="+publicKey, p.base, rate, liveBenchDuration)
	time.Sleep(time.Second) // the last ticks
	lat := dash.latencies()
	if len(lat) < 100 {
		b.Fatalf("only %d event → dashboard samples", len(lat))
	}
	slices.Sort(lat)
	pct := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*q))].Microseconds()) / 1000
	}
	p50, p99 := pct(0.50), pct(0.99)
	tick := float64(stream.DefaultTick.Milliseconds())
	report := func(name string, v float64) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
			}
			b.ReportMetric(v, "ms")
			b.ReportMetric(tick, "limit-ms")
		})
	}
	report("EventToDashboardP50Ms", p50)
	report("EventToDashboardP99Ms", p99)
	b.Logf("max ingest rate %.0f events/s; load %.0f events/s for %v (%d events sent, %d busy answers); tick %v; event → dashboard p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d samples from the feed)",
		maxRate, rate, liveBenchDuration, sent, busies, stream.DefaultTick, p50, p99, float64(lat[len(lat)-1].Microseconds())/1000, len(lat))
}

// liveTracker opens a tracker connection (hello, welcome) with a browser's
// user agent and the site's Origin.
func liveTracker(b *testing.B, url, origin string) *fws.Conn {
	b.Helper()
	c, _, err := fws.DefaultDialer.Dial(url, http.Header{"Origin": {origin}, "User-Agent": {liveBenchUA}})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.WriteMessage(fws.TextMessage, []byte(`{"type":"hello","v":1}`)); err != nil {
		b.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || !strings.Contains(string(msg), `"welcome"`) {
		b.Fatalf("welcome: %s %v", msg, err)
	}
	return c
}

// liveFrame is an events frame of n pageviews whose paths are path.
func liveFrame(seq, n int, path string) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"type":"events","seq":%d,"events":[`, seq)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"%s","type":"page","url":"https://demo.localhost%s","referrer":"https://www.google.com/"}`, uuid.NewString(), path)
	}
	sb.WriteString("]}")
	return []byte(sb.String())
}

// liveConn is the client side of a tracker connection's answers.
type liveConn struct {
	acked  atomic.Int64 // highest acknowledged seq
	busy   atomic.Int64 // Unix ns until which the server asked to pause (busy)
	busies atomic.Int64 // busy frames received
}

// read reads a tracker connection's frames until it ends; errors and
// unexpected closes go to failed.
func (lc *liveConn) read(c *fws.Conn, failed *atomic.Value) {
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			var ce *fws.CloseError
			if errors.As(err, &ce) && ce.Code != fws.CloseNormalClosure {
				failed.CompareAndSwap(nil, "closed by the server: "+ce.Error())
			}
			return
		}
		var f struct {
			Type         string
			Seq          int64
			RetryAfterMS int64 `json:"retry_after_ms"`
		}
		if json.Unmarshal(msg, &f) != nil {
			continue
		}
		switch f.Type {
		case "ack":
			lc.acked.Store(max(lc.acked.Load(), f.Seq))
			lc.busy.Store(0)
		case "busy":
			lc.busies.Add(1)
			lc.busy.Store(time.Now().Add(time.Duration(f.RetryAfterMS) * time.Millisecond).UnixNano())
		case "error":
			failed.CompareAndSwap(nil, string(msg))
		}
	}
}

// liveProbeRate sends liveBenchConns × liveBenchProbeFrames frames of
// liveBenchFrameEvents events as fast as acknowledgements (and the frame
// rate limit) allow, and returns the events acknowledged per second.
func liveProbeRate(b *testing.B, url, origin string) float64 {
	frames := make([][][]byte, liveBenchConns)
	for c := range frames {
		for i := range liveBenchProbeFrames {
			frames[c] = append(frames[c], liveFrame(i+1, liveBenchFrameEvents, "/probe/"+strconv.Itoa(i%50)))
		}
	}
	conns := make([]*fws.Conn, liveBenchConns)
	for i := range conns {
		conns[i] = liveTracker(b, url, origin)
	}
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Go(func() {
			var lc liveConn
			var readers sync.WaitGroup
			readers.Go(func() { lc.read(c, &failed) })
			every := time.Second / liveBenchFPS
			for j, f := range frames[i] {
				// At most liveBenchWindow unacknowledged; none while busy.
				for int64(j)-lc.acked.Load() >= liveBenchWindow || time.Now().UnixNano() < lc.busy.Load() {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(time.Until(start.Add(time.Duration(j) * every)))
				if err := c.WriteMessage(fws.TextMessage, f); err != nil {
					break // the reader says why
				}
			}
			for lc.acked.Load() < int64(len(frames[i])) && failed.Load() == nil && time.Since(start) < time.Minute {
				time.Sleep(time.Millisecond)
			}
			_ = c.Close()
			readers.Wait()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f != nil {
		b.Fatalf("rate probe: %v", f)
	}
	return float64(liveBenchConns*liveBenchProbeFrames*liveBenchFrameEvents) / elapsed.Seconds()
}

// liveOpenLoad sends rate events per second for d over liveBenchConns
// connections, each sending a frame every 1/liveBenchFPS s at its intended
// time (not waiting for acknowledgements, nor pausing when busy); every
// event's path is /t/<intended send time, Unix ns>. It returns the events
// sent and the busy frames received.
func liveOpenLoad(b *testing.B, url, origin string, rate float64, d time.Duration) (sent, busies int) {
	perFrame := int(rate / liveBenchConns / liveBenchFPS)
	if perFrame < 1 || perFrame > liveBenchFrameEvents {
		b.Fatalf("rate %.0f events/s needs %d events per frame", rate, perFrame)
	}
	var failed atomic.Value
	var total, busy atomic.Int64
	var wg sync.WaitGroup
	every := time.Second / liveBenchFPS
	start := time.Now().Add(100 * time.Millisecond)
	for i := range liveBenchConns {
		c := liveTracker(b, url, origin)
		offset := every * time.Duration(i) / liveBenchConns // spread the connections' frames
		wg.Go(func() {
			var lc liveConn
			var readers sync.WaitGroup
			readers.Go(func() { lc.read(c, &failed) })
			defer func() { busy.Add(lc.busies.Load()) }()
			for j := 1; ; j++ {
				at := start.Add(offset + time.Duration(j)*every)
				if at.Sub(start) > d {
					break
				}
				f := liveFrame(j, perFrame, "/t/"+strconv.FormatInt(at.UnixNano(), 10))
				time.Sleep(time.Until(at))
				if err := c.WriteMessage(fws.TextMessage, f); err != nil {
					break // the reader says why
				}
				total.Add(int64(perFrame))
			}
			_ = c.Close()
			readers.Wait()
		})
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		b.Fatalf("load: %v", f)
	}
	return int(total.Load()), int(busy.Load())
}

// liveDash is a dashboard on WS /v1/live recording, for every feed item
// whose path is /t/<ns>, the time from ns to the delta's arrival.
type liveDash struct {
	ws   *fws.Conn
	mu   sync.Mutex
	lat  []time.Duration
	done chan struct{}
}

// liveDashboard subscribes to site's feed with a read key, retrying until
// the server knows the key (its metadata refresh).
func liveDashboard(b *testing.B, wsBase, key, site string) *liveDash {
	b.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ws, _, err := fws.DefaultDialer.Dial(wsBase+"/v1/live", nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = ws.WriteJSON(map[string]any{"type": "auth", "token": key})
		_ = ws.WriteJSON(map[string]any{"type": "subscribe", "site": site, "views": []string{"feed"}})
		_, msg, err := ws.ReadMessage()
		if err == nil && strings.Contains(string(msg), `"snapshot"`) {
			d := &liveDash{ws: ws, done: make(chan struct{})}
			go d.read() // owned: close waits on done
			return d
		}
		_ = ws.Close()
		if time.Now().After(deadline) {
			b.Fatalf("dashboard subscription: %s %v", msg, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var liveFeedPath = []byte(`"path":"/t/`)

func (d *liveDash) read() {
	defer close(d.done)
	for {
		_, msg, err := d.ws.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		for _, part := range strings.Split(string(msg), string(liveFeedPath))[1:] {
			if k := strings.IndexByte(part, '"'); k > 0 {
				if ns, err := strconv.ParseInt(part[:k], 10, 64); err == nil {
					d.mu.Lock()
					d.lat = append(d.lat, now.Sub(time.Unix(0, ns)))
					d.mu.Unlock()
				}
			}
		}
	}
}

func (d *liveDash) reset() {
	d.mu.Lock()
	d.lat = nil
	d.mu.Unlock()
}

func (d *liveDash) latencies() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.lat)
}

func (d *liveDash) close() {
	_ = d.ws.Close()
	<-d.done
}
