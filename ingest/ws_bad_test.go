package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"

	"github.com/pulse-analytics/pulse/auth"
)

// TestWebSocketBadInput sends each kind of bad input on its own connection and
// checks its documented answer (docs/protocol.md), while one good client keeps
// sending events on another connection and keeps getting them acknowledged.
func TestWebSocketBadInput(t *testing.T) {
	cfg := Config{HelloTimeout: 300 * time.Millisecond, PingInterval: 100 * time.Millisecond, ReadTimeout: 400 * time.Millisecond,
		FramesPerSecond: 20, FrameBurst: 20, PacedFrames: 10}
	env := newWSEnv(t, cfg, BatcherConfig{Rows: 1000, FlushInterval: 10 * time.Millisecond})
	good, _ := env.connect(t, "")
	var goodSeq int64
	goodEvents := 0
	stillServing := func(t *testing.T) {
		t.Helper()
		raws, _ := testEvents(3)
		goodSeq++
		good.send(eventsFrame(goodSeq, raws))
		if other := good.waitAck(goodSeq, 5*time.Second); len(other) != 0 {
			t.Fatalf("good client got %+v", other)
		}
		goodEvents += 3
	}
	hello := map[string]any{"type": "hello", "v": 1}
	closeCase := func(name string, wantCode int, wantText string, run func(cl *wsClient)) {
		t.Run(name, func(t *testing.T) {
			var configure func(*fws.Conn)
			if name == "silent peer" {
				// The client never answers the server's pings.
				configure = func(c *fws.Conn) { c.SetPingHandler(func(string) error { return nil }) }
			}
			cl, _, err := env.dialWith(t, env.site.PublicKey, testOrigin, configure)
			if err != nil {
				t.Fatal(err)
			}
			run(cl)
			f := cl.waitClose(5 * time.Second)
			if f.Type != "close" || f.CloseCode != wantCode || !strings.Contains(f.CloseText, wantText) {
				t.Fatalf("got %+v, want close %d containing %q", f, wantCode, wantText)
			}
			stillServing(t)
		})
	}

	closeCase("not JSON", CloseProtocolError, "JSON object", func(cl *wsClient) {
		cl.send(hello)
		cl.next(time.Second) // welcome
		cl.sendRaw([]byte("hello there"))
	})
	closeCase("unknown frame type", CloseProtocolError, `unknown frame type "subscribe"`, func(cl *wsClient) {
		cl.send(hello)
		cl.next(time.Second)
		cl.sendRaw([]byte(`{"type":"subscribe"}`))
	})
	closeCase("oversized frame", 1009, "", func(cl *wsClient) {
		cl.send(hello)
		cl.next(time.Second)
		cl.sendRaw([]byte(`{"type":"ping","pad":"` + strings.Repeat("x", MaxFrameBytes) + `"}`))
	})
	closeCase("events before hello", CloseProtocolError, "first frame must be hello", func(cl *wsClient) {
		raws, _ := testEvents(1)
		cl.send(eventsFrame(1, raws))
	})
	closeCase("missing hello", CloseHelloTimeout, "no hello", func(*wsClient) {})
	closeCase("wrong protocol version", CloseUnsupportedVersion, "not supported", func(cl *wsClient) {
		cl.send(map[string]any{"type": "hello", "v": 2})
	})
	closeCase("bad identity token", CloseAuthFailed, "identity", func(cl *wsClient) {
		cl.send(map[string]any{"type": "hello", "v": 1, "identity": "not.a.jwt"})
	})
	closeCase("seq does not grow", CloseProtocolError, "does not grow", func(cl *wsClient) {
		cl.send(hello)
		cl.next(time.Second)
		raws, _ := testEvents(1)
		cl.send(eventsFrame(5, raws)) // valid: stored
		cl.send(eventsFrame(5, raws))
		goodEvents++
	})
	closeCase("flood beyond the frame rate, paced too long", CloseRateLimited, "frames per second for 10 frames in a row", func(cl *wsClient) {
		cl.send(hello)
		cl.next(time.Second)
		for range 3 * cfg.FrameBurst {
			cl.sendRaw([]byte(`{"type":"ping"}`))
		}
	})
	closeCase("silent peer", CloseDeadPeer, "nothing received", func(cl *wsClient) {
		cl.send(hello)
	})

	for _, tt := range []struct{ name, key, origin string }{
		{"wrong site key", "pk_nope", testOrigin},
		{"foreign Origin", env.site.PublicKey, "https://evil.example"},
		{"no Origin", env.site.PublicKey, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := env.dial(t, tt.key, tt.origin)
			if err == nil || resp == nil || resp.StatusCode != 403 {
				t.Fatalf("dial = %v (response %v), want HTTP 403 before the upgrade", err, resp)
			}
			stillServing(t)
		})
	}

	t.Run("invalid events mixed with valid ones", func(t *testing.T) {
		cl, _ := env.connect(t, "")
		raws, _ := testEvents(3)
		frame := []json.RawMessage{raws[0], json.RawMessage(`{"type":"page","url":"not a url"}`), raws[1],
			json.RawMessage(`"just a string"`), json.RawMessage(`{"type":"track","name":"big","props":{"p":"` + strings.Repeat("x", MaxEventBytes) + `"}}`), raws[2]}
		cl.send(eventsFrame(1, frame))
		cl.send(eventsFrame(2, nil))
		errs := cl.waitAck(2, 5*time.Second)
		got := ""
		for _, e := range errs {
			got += fmt.Sprintf("%d:%d:%s:%s ", e.Seq, e.Index, e.Code, e.Field)
		}
		if want := "1:1:invalid_event:url 1:3:invalid_event:event 1:4:invalid_event:event 2:-1:bad_frame: "; got != want {
			t.Fatalf("errors = %q, want %q", got, want)
		}
		goodEvents += 3
		stillServing(t)
	})

	t.Run("quota of connections", func(t *testing.T) {
		org, err := env.store.SetQuota(t.Context(), env.org.ID, func() (q auth.Quota) {
			q = env.org.Quota
			q.MaxConnections = 1
			return q
		}())
		if err != nil {
			t.Fatal(err)
		}
		defer env.store.SetQuota(t.Context(), org.ID, env.org.Quota)
		cl, _, err := env.dial(t, env.site.PublicKey, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		if f := cl.waitClose(5 * time.Second); f.CloseCode != CloseQuotaExceeded || !strings.Contains(f.CloseText, "connections retry_after=") {
			t.Fatalf("got %+v, want close 4429 connections", f)
		}
	})

	rows, distinct := env.storedCounts(t)
	if rows != uint64(goodEvents) || distinct != rows {
		t.Fatalf("stored %d rows (%d distinct), want the %d valid events once", rows, distinct, goodEvents)
	}
}

// TestConnectionsPerAddress: one address holds at most
// MaxConnectionsPerAddress tracker connections; the next is closed 4429
// address_connections with a retry_after, and a slot given back is free
// again. The tenant's own connection quota (50) is not what refuses.
func TestConnectionsPerAddress(t *testing.T) {
	env := newWSEnv(t, Config{MaxConnectionsPerAddress: 2}, BatcherConfig{})
	first, _ := env.connect(t, "")
	env.connect(t, "")
	cl, _, err := env.dial(t, env.site.PublicKey, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if f := cl.waitClose(5 * time.Second); f.CloseCode != CloseQuotaExceeded || f.CloseText != ReasonAddressConnections+" retry_after=30" {
		t.Fatalf("third connection from one address: %+v, want close 4429 %q", f, ReasonAddressConnections+" retry_after=30")
	}
	_ = first.c.Close()
	for end := time.Now().Add(10 * time.Second); env.openConns() > 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d connections still served 10 s after one closed", env.openConns())
		}
	}
	env.connect(t, "")
}
