package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/benchws"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// The server-side ingest figures need the server in its own process, so
// that its CPU, allocations and memory are not mixed with the load
// generator's: BenchmarkIngest (of this package) runs the real pulse binary (pulse dev
// against the test ClickHouse) and drives it over 127.0.0.1 from this process.
//
// The events come over serverBenchConns connections, each with a User-Agent
// of its own (so as many visitors and visits), which keeps every connection
// far below its frame rate limit (ingest.DefaultFramesPerSecond × 200 events
// = 10,000 events/s) while their sum is above what the server reaches.
const (
	serverBenchConns    = 32
	serverBenchFrames   = 150     // per connection
	serverBenchPerFrame = 200     // 32 × 150 × 200 = 960k events
	serverBenchDecoded  = 100_000 // events the decode limit times
	serverBenchIdle     = 10_000
	// connMemGoalKiB is the goal for one idle ingest connection: 16 KiB, so that 10,000 idle trackers take 160 MiB.
	connMemGoalKiB = 16
)

func BenchmarkIngest(b *testing.B) {
	db := chtest.Open(b)
	dbURL := db.URL()
	data := b.TempDir()
	// Every connection comes from 127.0.0.1: room beyond one address's daily budget.
	p := startPulse(b, nil, "dev", "--clickhouse", dbURL, "--data", data, "--address-events-per-day", "1000000000000", "--address-connections", "1000000")
	p.waitReady(b)
	key := p.siteKey(b)
	env := map[string]string{"PULSE_CLICKHOUSE": dbURL, "PULSE_DATA": data}
	var out strings.Builder
	if err := run(context.Background(), []string{"admin", "org", "list", "--json"}, func(k string) string { return env[k] }, &out); err != nil {
		b.Fatal(err)
	}
	var orgs []struct{ ID string }
	_ = json.Unmarshal([]byte(out.String()), &orgs)
	// Room for the idle connections beyond the default per-tenant limit.
	if err := run(context.Background(), []string{"admin", "org", "quota", "--org", orgs[0].ID, "--max-connections", "20000", "--events-per-second", "10000000"},
		func(k string) string { return env[k] }, io.Discard); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the server's metadata refresh interval

	// dialTo connects to the server at base, with the Origin the site allows
	// (the first server's), and says hello.
	dialTo := func(base string, agent int) *fws.Conn {
		b.Helper()
		h := http.Header{"Origin": {p.base}, "User-Agent": {fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", 100+agent, 100+agent)}}
		c, _, err := fws.DefaultDialer.Dial(strings.Replace(base, "http://", "ws://", 1)+"/v1/ingest?site="+key, h)
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

	// Frames and the same-run limits: decoding those events from JSON here,
	// and reading and decoding the frames in a bare WebSocket server.
	frames := make([][][]byte, serverBenchConns)
	var allEvents [][]byte
	for c := range frames {
		for i := range serverBenchFrames {
			evs := make([]json.RawMessage, serverBenchPerFrame)
			for j := range evs {
				evs[j] = json.RawMessage(fmt.Sprintf(`{"id":"%s","type":"page","url":"https://demo.localhost/p/%d?utm_source=news","referrer":"https://www.google.com/","title":"Page","props":{"plan":"pro","n":%d}}`, uuid.NewString(), j%50, j))
				if len(allEvents) < serverBenchDecoded {
					allEvents = append(allEvents, evs[j])
				}
			}
			f, _ := json.Marshal(map[string]any{"type": "events", "seq": i + 1, "events": evs})
			frames[c] = append(frames[c], f)
		}
	}
	events := float64(serverBenchConns * serverBenchFrames * serverBenchPerFrame)

	var allocs, limitAllocs, rate, limitRate float64
	b.Run("cpu_us_per_event", func(b *testing.B) {
		var cpuUS, limitUS float64
		for b.Loop() {
			conns := make([]*fws.Conn, len(frames))
			for c := range conns {
				conns[c] = dialTo(p.base, c)
			}
			cpu0, mallocs0 := procCPU(b, p.cmd.Process.Pid), metric(b, p.base, "go_memstats_mallocs_total")
			start := time.Now()
			done := make(chan error, serverBenchConns)
			for c := range frames {
				go func() { done <- sendAll(conns[c], frames[c]) }()
			}
			for range frames {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			rate = events / time.Since(start).Seconds()
			cpuUS = (procCPU(b, p.cmd.Process.Pid) - cpu0).Seconds() * 1e6 / events
			allocs = (metric(b, p.base, "go_memstats_mallocs_total") - mallocs0) / events
			limitUS, limitAllocs = decodeCost(allEvents)
			limitRate = benchws.ReadDecodeRate(b, frames, int(events), decodeFrame)
		}
		b.ReportMetric(cpuUS, "µs/event")
		b.ReportMetric(limitUS, "limit-µs/event")
	})
	b.Run("allocs_per_event", func(b *testing.B) { // measured in the run above
		for b.Loop() {
		}
		b.ReportMetric(allocs, "allocs/event")
		b.ReportMetric(limitAllocs, "limit-allocs/event")
	})
	// Events acknowledged per second with enrichment on, in the run above;
	// limit: the same frames over as many connections read and decoded by a
	// bare WebSocket server.
	b.Run("enriched_events_per_s", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(limitRate, "limit-events/s")
	})

	// Memory per idle connection, on a second server of its own (same
	// ClickHouse, same site): the first one's heap holds the garbage of the
	// events above, and whether a collection runs while the connections are
	// dialled would decide several KiB of the figure. The second server runs
	// with GOGC=2, so that the heap in use before and after the dials is
	// within a few per cent of the live heap: at the default the figure
	// depended on whether a collection had run since the dials (13.7 to 20.6
	// KiB for the same code), and at GOGC=20 a baseline holding garbage that
	// the dials' collections freed still made it look smaller (11.9 against
	// 15.3 KiB). The runtime then collects more often; what an idle
	// connection holds is the same.
	b.Run("conn_mem_kib", func(b *testing.B) {
		var perConn float64
		p := startPulse(b, []string{"GOGC=2"}, "dev", "--clickhouse", dbURL, "--data", b.TempDir(), "--address-connections", "1000000")
		p.waitReady(b)
		time.Sleep(2500 * time.Millisecond) // as above: the quota is read
		for b.Loop() {
			heap0, stack0 := metric(b, p.base, "go_memstats_heap_inuse_bytes"), metric(b, p.base, "go_memstats_stack_inuse_bytes")
			goroutines0 := metric(b, p.base, "go_goroutines")
			conns := make([]*fws.Conn, 0, serverBenchIdle)
			for range serverBenchIdle {
				conns = append(conns, dialTo(p.base, 0))
			}
			time.Sleep(time.Second)
			heap, stack := metric(b, p.base, "go_memstats_heap_inuse_bytes")-heap0, metric(b, p.base, "go_memstats_stack_inuse_bytes")-stack0
			goroutines := metric(b, p.base, "go_goroutines") - goroutines0
			perConn = (heap + stack) / serverBenchIdle / 1024
			b.Logf("per idle connection: heap %.1f KiB, goroutine stacks %.1f KiB, %.2f goroutines",
				heap/serverBenchIdle/1024, stack/serverBenchIdle/1024, goroutines/serverBenchIdle)
			for _, c := range conns {
				c.Close()
			}
		}
		b.ReportMetric(perConn, "KiB/conn")
		b.ReportMetric(connMemGoalKiB, "limit-KiB/conn")
	})
}

// sendAll sends frames over conn, at most 64 unacknowledged, and waits for the last ack.
func sendAll(conn *fws.Conn, frames [][]byte) error {
	defer conn.Close()
	acked := make(chan int64, len(frames))
	go func() { // ended by conn.Close
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				close(acked)
				return
			}
			var f struct {
				Type string
				Seq  int64
			}
			if json.Unmarshal(msg, &f) == nil && f.Type == "ack" {
				acked <- f.Seq
			}
		}
	}()
	last := int64(0)
	for i, f := range frames {
		for int64(i)-last >= 64 {
			s, ok := <-acked
			if !ok {
				return fmt.Errorf("connection ended before ack %d", last+1)
			}
			last = max(last, s)
		}
		if err := conn.WriteMessage(fws.TextMessage, f); err != nil {
			return err
		}
	}
	for last < int64(len(frames)) {
		s, ok := <-acked
		if !ok {
			return fmt.Errorf("connection ended at ack %d of %d", last, len(frames))
		}
		last = max(last, s)
	}
	return nil
}

// benchEvent is what the limits decode an event into.
type benchEvent struct {
	ID, Type, URL, Referrer, Title string
	Props                          map[string]any
}

// decodeFrame decodes an events frame and each of its events.
func decodeFrame(data []byte) error {
	var f struct {
		Type   string
		Seq    int64
		Events []json.RawMessage
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	for _, raw := range f.Events {
		var ev benchEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return err
		}
	}
	return nil
}

// decodeCost is the same-run limit: CPU µs and allocations per event of
// decoding the events from JSON into a struct, the least any server does.
func decodeCost(events [][]byte) (float64, float64) {
	var ev benchEvent
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for _, e := range events {
		_ = json.Unmarshal(e, &ev)
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	n := float64(len(events))
	return elapsed.Seconds() * 1e6 / n, float64(m1.Mallocs-m0.Mallocs) / n
}

// procCPU is the user plus system CPU time of a process.
func procCPU(t testing.TB, pid int) time.Duration {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration((utime + stime) / clockTicks * float64(time.Second))
}

// metric reads one unlabelled value from a /metrics page.
func metric(t testing.TB, base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}
