package ingest

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/benchws"
)

// Load of the ingest benchmarks: benchConns connections, frames of
// benchPerFrame tracker-shaped events, at most benchWindow unacknowledged
// frames per connection. The run is long enough (about 8 s here) that its
// start and its last partial block, which waits up to the flush interval,
// are a small part of it: at 240k events they were up to half of it.
const (
	benchConns    = 8
	benchPerFrame = 200
	benchWindow   = 128
	benchFrames   = 600 // per connection: 8 × 600 × 200 = 960k events
	// benchLatencyWindow is how long the ack latency is measured, at half
	// the measured rate.
	benchLatencyWindow = 5 * time.Second
)

// BenchmarkIngest drives the WebSocket endpoint with a real client over
// 127.0.0.1 into a real ClickHouse and reports:
//
//   - events_per_s: events committed (acknowledged) per second, closed-model
//     load; limit: the same frames read and decoded by a bare fasthttp/websocket
//     server (ReadMessage + JSON decoding of the frame and of every event),
//     with the same client and connections;
//   - ack_p50_ms, ack_p99_ms, ack_p999_ms: ack latency at half the measured
//     rate, open model (latency from each frame's intended send time);
//     limit: the goal, flush interval + 50 ms (an ack waits for the next flush and its insert; not a physical limit).
func BenchmarkIngest(b *testing.B) {
	frames := benchFrameSet(benchConns, benchFrames)
	events := float64(benchConns * benchFrames * benchPerFrame)
	cfg := BatcherConfig{}
	cfg.withDefaults()

	env := newWSEnv(b, fastConfig, cfg)
	var rate, limit float64
	var lat []time.Duration
	b.Run("events_per_s", func(b *testing.B) {
		for b.Loop() {
			start := time.Now()
			env.drive(b, frames, 0, 0)
			rate = events / time.Since(start).Seconds()
			limit = rawReadDecodeRate(b, frames)
		}
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(limit, "limit-events/s")
	})
	b.Run("ack_latency", func(b *testing.B) {
		// Steady state: latencies of the frames of the first
		// benchLatencyWindow, while the load goes on for the flush interval
		// and a second more, so that no measured frame waits in the last,
		// partial block for the interval (a burst's last block always does).
		perConn := rate / 2 / benchPerFrame / benchConns // frames per second
		measured := int(benchLatencyWindow.Seconds() * perConn)
		tail := int((cfg.FlushInterval+time.Second).Seconds()*perConn) + 1
		for b.Loop() {
			lat = env.drive(b, benchFrameSet(benchConns, measured+tail), rate/2, int64(measured))
		}
		b.Logf("ack latency of %d frames of %d events per connection over %s at %.0f events/s", measured, benchPerFrame, benchLatencyWindow, rate/2)
	})
	goal := float64((cfg.FlushInterval + 50*time.Millisecond).Milliseconds())
	slices.Sort(lat)
	for _, q := range []struct {
		name string
		p    float64
	}{{"ack_p50_ms", 0.50}, {"ack_p99_ms", 0.99}, {"ack_p999_ms", 0.999}} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
			}
			v := lat[min(len(lat)-1, int(float64(len(lat))*q.p))]
			b.ReportMetric(float64(v.Microseconds())/1000, "ms")
			b.ReportMetric(goal, "limit-ms")
		})
	}
}

// benchFrameSet encodes frames[conn][i] with fresh event ids.
func benchFrameSet(conns, n int) [][][]byte {
	out := make([][][]byte, conns)
	for c := range out {
		for i := range n {
			raws, _ := testEvents(benchPerFrame)
			f, _ := json.Marshal(eventsFrame(int64(i+1), raws))
			out[c] = append(out[c], f)
		}
	}
	return out
}

// drive sends every connection's frames and waits for their acks. With
// eventsPerS == 0 it sends as fast as the window allows (closed model);
// otherwise frames go out at that total rate (open model) and the latency
// of each of the first measured frames of every connection, from its
// intended send time to its ack, is returned.
func (e *wsEnv) drive(b *testing.B, frames [][][]byte, eventsPerS float64, measured int64) []time.Duration {
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	for c := range frames {
		cl, _ := e.connect(b, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(len(frames[c]))
			intended := make([]time.Time, n+1)
			var interval time.Duration
			if eventsPerS > 0 {
				interval = time.Duration(float64(time.Second) * benchPerFrame * float64(len(frames)) / eventsPerS)
			}
			start := time.Now()
			var sent, acked int64
			var mine []time.Duration
			onAck := func(f serverFrame) {
				if f.Type == "close" || f.Type == "eof" {
					b.Errorf("connection closed: %+v", f)
					acked = n
					return
				}
				if f.Type != "ack" {
					return
				}
				now := time.Now()
				for s := acked + 1; s <= min(f.Seq, measured); s++ {
					mine = append(mine, now.Sub(intended[s]))
				}
				acked = f.Seq
			}
			for sent < n {
				if interval > 0 {
					next := start.Add(time.Duration(sent) * interval)
					if d := time.Until(next); d > 0 {
						select {
						case f := <-cl.frames:
							onAck(f)
							continue
						case <-time.After(d):
						}
					}
					intended[sent+1] = next
				} else if sent-acked >= benchWindow {
					onAck(<-cl.frames)
					continue
				} else {
					intended[sent+1] = time.Now()
				}
				sent++
				cl.sendRaw(frames[c][sent-1])
			}
			for acked < n {
				onAck(<-cl.frames)
			}
			_ = cl.c.Close()
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat
}

// rawReadDecodeRate is the limit of events_per_s: a bare Fiber WebSocket
// server that only reads each frame and decodes it and its events with
// encoding/json (the decoding every earlier run of this benchmark used); the
// same client sends the same frames without waiting for acks.
func rawReadDecodeRate(b *testing.B, frames [][][]byte) float64 {
	return benchws.ReadDecodeRate(b, frames, len(frames)*len(frames[0])*benchPerFrame, func(data []byte) error {
		f, err := refDecodeFrame(data)
		if err != nil {
			return err
		}
		for _, raw := range f.Events {
			var w wireEvent
			if err := json.Unmarshal(raw, &w); err != nil {
				return err
			}
		}
		return nil
	})
}
