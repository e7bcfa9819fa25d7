package ingest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/auth"
)

// browserClose is how a connection of testdata/close-browser.mjs ended.
type browserClose struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
	Sent   int    `json:"sent"`
}

// sendingBrowser serves a blank page on 127.0.0.1, makes its origin one of
// the site's allowed origins, and returns a function that runs
// testdata/close-browser.mjs: runs connections from that page in headless
// Chromium, each sending frames of kind as fast as it can until the server
// closes it.
func sendingBrowser(t *testing.T, env *wsEnv) func(kind string, runs int) []browserClose {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("Debian's chromium is required: apt-get install chromium")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<!doctype html><title>sending</title>"))
	})}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-served })
	page := "http://" + ln.Addr().String()
	origins := []string{testOrigin, page}
	if _, err := env.store.UpdateSite(context.Background(), env.site.ID, auth.SiteUpdate{AllowedOrigins: &origins}); err != nil {
		t.Fatal(err)
	}
	return func(kind string, runs int) []browserClose {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", "testdata/close-browser.mjs")
		cmd.Env = append(os.Environ(), "PAGE_URL="+page+"/", "WS_URL="+env.url+"?site="+env.site.PublicKey,
			"KIND="+kind, "RUNS="+strconv.Itoa(runs))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node testdata/close-browser.mjs: %v\n%s", err, out)
		}
		var res []browserClose
		if err := json.Unmarshal(out, &res); err != nil || len(res) != runs {
			t.Fatalf("close-browser.mjs printed %q (%v), want %d results", out, err, runs)
		}
		return res
	}
}

// TestCloseCodesReachASendingBrowser: the server closes connections whose
// browser is sending frames as fast as it can (a tracker resending its
// queue), over the rate limit and over the tenant's event quota. Chromium
// must report the close code and reason, not 1006: the server reads what the
// client still sends until the client's close answer before it closes the
// socket. Ten connections per code, so that an unordered close shows.
func TestCloseCodesReachASendingBrowser(t *testing.T) {
	const runs = 10
	cfg := Config{FramesPerSecond: 200, FrameBurst: 20, PacedFrames: 100}
	env := newWSEnv(t, cfg, BatcherConfig{Rows: 1000, FlushInterval: 10 * time.Millisecond})
	if _, err := env.store.SetQuota(context.Background(), env.org.ID, auth.Quota{EventsPerSecond: 20, EventsPerMonth: 1 << 40, MaxConnections: 50}); err != nil {
		t.Fatal(err)
	}
	browse := sendingBrowser(t, env)
	for _, tt := range []struct {
		name, kind string
		code       int
		reason     string
	}{
		{"over the frame rate", "pings", CloseRateLimited, "frames per second"},
		{"over the events quota", "events", CloseQuotaExceeded, "events_per_second retry_after="},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i, c := range browse(tt.kind, runs) {
				if c.Code != tt.code || !strings.Contains(c.Reason, tt.reason) {
					t.Errorf("connection %d (%d frames sent): Chromium saw close %d %q, want %d with %q", i+1, c.Sent, c.Code, c.Reason, tt.code, tt.reason)
				}
			}
		})
	}
}
