package stream

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
)

// browserClose is how a connection of testdata/close-browser.mjs ended.
type browserClose struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
	Sent   int    `json:"sent"`
}

// TestCloseCodesReachASendingBrowser: the server closes live sockets whose
// browser (on the dashboard's origin) is sending pings as fast as it can:
// when their credential is revoked, and when the tenant has no live
// subscriber slot left. Chromium must report the close code and reason, not
// 1006: the server reads what the client still sends until the client's
// close answer before it closes the socket. Five connections per code, so
// that an unordered close shows.
func TestCloseCodesReachASendingBrowser(t *testing.T) {
	const runs = 5
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("Debian's chromium is required: apt-get install chromium")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<!doctype html><title>dashboard</title>"))
	})}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-served })
	page := "http://" + ln.Addr().String()

	e := newLiveEnvAt(t, Config{PingInterval: 100 * time.Millisecond, MaxSubscribersPerTenant: 1}, page)
	a := newTenant(t, e.store, "acme")
	subscribers := func() int {
		e.hub.mu.Lock()
		defer e.hub.mu.Unlock()
		return len(e.hub.subs)
	}
	browse := func(t *testing.T, tokens []string) []browserClose {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", "testdata/close-browser.mjs")
		cmd.Env = append(os.Environ(), "PAGE_URL="+page+"/", "WS_URL=ws://"+e.addr+"/v1/live", "SITE="+a.site.ID.String(),
			"TOKENS="+strings.Join(tokens, ","))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node testdata/close-browser.mjs: %v\n%s", err, out)
		}
		var res []browserClose
		if err := json.Unmarshal(out, &res); err != nil || len(res) != len(tokens) {
			t.Fatalf("close-browser.mjs printed %q (%v), want %d results", out, err, len(tokens))
		}
		return res
	}
	check := func(t *testing.T, got []browserClose, code int, reason string) {
		t.Helper()
		for i, c := range got {
			if c.Code != code || !strings.Contains(c.Reason, reason) {
				t.Errorf("connection %d (%d pings sent): Chromium saw close %d %q, want %d with %q", i+1, c.Sent, c.Code, c.Reason, code, reason)
			}
		}
	}

	t.Run("access revoked", func(t *testing.T) {
		var ids []uuid.UUID
		var secrets []string
		for range runs {
			key, secret, err := e.store.CreateAPIKey(context.Background(), a.org.ID, "dashboard", []auth.Scope{auth.ScopeRead}, a.owner.ID)
			if err != nil {
				t.Fatal(err)
			}
			ids, secrets = append(ids, key.ID), append(secrets, secret)
		}
		revoked := make(chan error, 1)
		go func() { // owned: the test waits on revoked below
			for _, id := range ids {
				// Each key is revoked once its browser has subscribed (and sends).
				for deadline := time.Now().Add(60 * time.Second); subscribers() == 0; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						revoked <- context.DeadlineExceeded
						return
					}
				}
				if err := e.store.RevokeAPIKey(context.Background(), id); err != nil {
					revoked <- err
					return
				}
				for subscribers() != 0 {
					time.Sleep(10 * time.Millisecond)
				}
			}
			revoked <- nil
		}()
		got := browse(t, secrets)
		if err := <-revoked; err != nil {
			t.Fatal(err)
		}
		check(t, got, CloseAccessRevoked, "credentials revoked")
	})

	t.Run("no live subscriber slot", func(t *testing.T) {
		holder, _, err := e.dial(t, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, code := e.subscribe(t, holder, a.readKey, a.site.ID, "online"); code != 0 {
			t.Fatalf("the first subscriber was refused with %d", code)
		}
		tokens := make([]string, runs)
		for i := range tokens {
			tokens[i] = a.readKey
		}
		check(t, browse(t, tokens), CloseQuotaExceeded, ReasonLiveSubscribers+" retry_after=")
		_ = holder.Close()
	})
}
