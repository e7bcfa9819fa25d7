package main

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// tcpRelay forwards connections from its own 127.0.0.1 port to target until
// cut, which closes the listener and every relayed connection: the port then
// refuses connections, as a stopped database does.
type tcpRelay struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newTCPRelay(t *testing.T, target string) *tcpRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpRelay{ln: ln}
	r.wg.Add(1)
	go func() { // owned: cut waits for it
		defer r.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			r.wg.Add(2)
			go func() { defer r.wg.Done(); io.Copy(out, in); out.Close() }() // owned: cut waits
			go func() { defer r.wg.Done(); io.Copy(in, out); in.Close() }()  // owned: cut waits
		}
	}()
	t.Cleanup(r.cut)
	return r
}

func (r *tcpRelay) addr() string { return r.ln.Addr().String() }

func (r *tcpRelay) cut() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// TestReadyzTellsAnonymousCallersNoDetails stops the database pulse uses and
// checks that /readyz answers a bare "not ready", while the log names the
// address and the driver's error for the operator.
func TestReadyzTellsAnonymousCallersNoDetails(t *testing.T) {
	db := chtest.Open(t)
	relay := newTCPRelay(t, db.Addr)
	p := startPulse(t, nil, "serve", "--clickhouse", db.URLAt(relay.addr()))
	p.waitReady(t)
	relay.cut()

	var code int
	var body string
	deadline := time.Now().Add(backgroundWait)
	for code != 503 && time.Now().Before(deadline) {
		resp, err := http.Get(p.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, body = resp.StatusCode, string(b)
	}
	if code != 503 {
		t.Fatalf("/readyz with ClickHouse gone = %d %s", code, body)
	}
	if body != `{"status":"not ready"}` {
		t.Errorf("/readyz body = %s, want only {\"status\":\"not ready\"}", body)
	}
	for _, secret := range []string{relay.addr(), "clickhouse", "refused", "dial", "EOF"} {
		if strings.Contains(strings.ToLower(body), strings.ToLower(secret)) {
			t.Errorf("/readyz body %s reveals %q", body, secret)
		}
	}
	logged := regexp.MustCompile(`level=WARN msg="not ready" reason="clickhouse at ` + regexp.QuoteMeta(relay.addr()) + ` does not answer: [^"]+"`)
	if p.stdout.waitFor(logged, p.exited, 10*time.Second) == nil {
		t.Errorf("the log does not give the reason with the address:\n%s", p.stdout)
	}
}
