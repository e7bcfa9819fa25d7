package ingest

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// tcpProxy forwards 127.0.0.1:port to a target. cut closes the listener and
// every forwarded connection, so the target looks stopped (connections reset,
// new ones refused); restore listens on the same port again.
type tcpProxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	p := &tcpProxy{target: target, conns: make(map[net.Conn]struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

func (p *tcpProxy) restore(t testing.TB) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// TestWebSocketClickHouseOutage cuts ClickHouse off from the batcher for 30 s
// (3 s with -short) while clients send at a steady rate. The outage is a TCP
// proxy between the writer and the test's managed clickhouse-server that drops
// every connection and refuses new ones: to Pulse that is exactly a stopped
// server, and unlike stopping the shared server it leaves the auth store's
// metadata reads working. Clients must get busy, every acknowledged event must
// be stored, everything sent must arrive exactly once, and the batcher must
// stay within its bound of two blocks.
func TestWebSocketClickHouseOutage(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 3 * time.Second
	}
	const (
		clients   = 4
		perFrame  = 50
		window    = 40 // frames a client keeps unacknowledged at most
		rows      = 2000
		sendEvery = 5 * time.Millisecond
	)
	rawURL := chtest.URL(t)
	ctx := context.Background()
	db, err := chdb.Open(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(rawURL)
	proxy := newTCPProxy(t, db.Addr)
	u.Host = proxy.addr
	writerDB, err := chdb.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	env := newWSEnvOn(t, fastConfig, BatcherConfig{Rows: rows, FlushInterval: 50 * time.Millisecond,
		RetryMin: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond, InsertTimeout: 2 * time.Second}, db, writerDB)

	var maxBuffered atomic.Int64
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(5 * time.Millisecond):
				if b := int64(gaugeValue(env.m.buffered)); b > maxBuffered.Load() {
					maxBuffered.Store(b)
				}
			}
		}
	}()

	var stop atomic.Bool
	type result struct {
		sent, acked int64
		busy        int
	}
	results := make([]result, clients)
	var sentEvents atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		cl, _ := env.connect(t, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			handle := func(f serverFrame) {
				switch f.Type {
				case "ack":
					r.acked = f.Seq
				case "busy":
					r.busy++
				case "close", "eof":
					t.Errorf("client %d closed: %+v", i, f)
					stop.Store(true)
				default:
					t.Errorf("client %d: unexpected %+v", i, f)
				}
			}
			tick := time.NewTicker(sendEvery)
			defer tick.Stop()
			for !stop.Load() {
				select {
				case f := <-cl.frames:
					handle(f)
				case <-tick.C:
					if r.sent-r.acked < window {
						raws, _ := testEvents(perFrame)
						r.sent++
						cl.send(eventsFrame(r.sent, raws))
						sentEvents.Add(perFrame)
					}
				}
			}
			deadline := time.After(60 * time.Second)
			for r.acked < r.sent {
				select {
				case f := <-cl.frames:
					handle(f)
				case <-deadline:
					t.Errorf("client %d: ack %d of %d after the outage", i, r.acked, r.sent)
					return
				}
			}
		}()
	}

	time.Sleep(time.Second) // steady load before the outage
	proxy.cut()
	time.Sleep(outage)
	proxy.restore(t)
	time.Sleep(2 * time.Second) // load continues after the restart
	stop.Store(true)
	wg.Wait()
	close(stopSampling)
	<-sampleDone

	busy := 0
	for i, r := range results {
		if r.acked != r.sent {
			t.Fatalf("client %d: %d frames sent, %d acknowledged", i, r.sent, r.acked)
		}
		busy += r.busy
	}
	if busy == 0 {
		t.Fatal("no client was told busy during the outage")
	}
	if bound := int64(2 * (rows + perFrame)); maxBuffered.Load() > bound {
		t.Fatalf("the batcher held %d events, more than its bound of %d", maxBuffered.Load(), bound)
	}
	stored, distinct := env.storedCounts(t)
	if stored != uint64(sentEvents.Load()) || distinct != stored {
		t.Fatalf("stored %d rows (%d distinct) of %d sent: want each once", stored, distinct, sentEvents.Load())
	}
	t.Logf("outage %s: %d events sent by %d clients, %d busy frames, at most %d events buffered; all stored once",
		outage, sentEvents.Load(), clients, busy, maxBuffered.Load())
}
