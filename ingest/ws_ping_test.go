package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	fws "github.com/fasthttp/websocket"
)

// TestPongIsValidUTF8 sends pings over a real WebSocket and checks that every
// text frame the server answers with is valid UTF-8: a ping whose id is not
// gets a clear protocol error instead of an echo.
func TestPongIsValidUTF8(t *testing.T) {
	env := newWSEnv(t, Config{}, BatcherConfig{Rows: 1000, FlushInterval: 10 * time.Millisecond})
	dial := func(t *testing.T) *fws.Conn {
		t.Helper()
		c, _, err := fws.DefaultDialer.Dial(env.url+"?site="+env.site.PublicKey, map[string][]string{"Origin": {testOrigin}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.WriteMessage(fws.TextMessage, []byte(`{"type":"hello","v":1}`)); err != nil {
			t.Fatal(err)
		}
		if _, w, err := c.ReadMessage(); err != nil || !strings.Contains(string(w), `"welcome"`) {
			t.Fatalf("answer to hello = %q, %v", w, err)
		}
		return c
	}
	// answer reads the server's next message, with a bound for a server that says nothing.
	answer := func(t *testing.T, c *fws.Conn) (string, *fws.CloseError) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		mt, data, err := c.ReadMessage()
		var ce *fws.CloseError
		if errors.As(err, &ce) {
			return "", ce
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if mt != fws.TextMessage || !utf8.Valid(data) {
			t.Fatalf("answer is message type %d, valid UTF-8 %v: %q", mt, utf8.Valid(data), data)
		}
		return string(data), nil
	}

	t.Run("valid id is echoed", func(t *testing.T) {
		c := dial(t)
		if err := c.WriteMessage(fws.TextMessage, []byte(`{"type":"ping","id":"héllo ✓"}`)); err != nil {
			t.Fatal(err)
		}
		if got, ce := answer(t, c); ce != nil || got != `{"type":"pong","id":"héllo ✓"}` {
			t.Fatalf("pong = %q (close %v)", got, ce)
		}
	})
	for _, tt := range []struct{ name, frame string }{
		{"string id", "{\"type\":\"ping\",\"id\":\"a\xff\xfeb\"}"},
		{"object id", "{\"type\":\"ping\",\"id\":{\"k\":\"\xc3\x28\"}}"},
		{"truncated rune", "{\"type\":\"ping\",\"id\":\"\xe2\x9c\"}"},
	} {
		t.Run("invalid UTF-8 "+tt.name, func(t *testing.T) {
			c := dial(t)
			if err := c.WriteMessage(fws.TextMessage, []byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			got, ce := answer(t, c)
			if ce == nil || ce.Code != CloseProtocolError || !strings.Contains(ce.Text, "ping id must be valid UTF-8") {
				t.Fatalf("answer = %q (close %v), want close %d saying the ping id must be valid UTF-8", got, ce, CloseProtocolError)
			}
		})
	}
}
