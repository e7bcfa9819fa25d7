package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	fws "github.com/fasthttp/websocket"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// TestVisitorsBehindAReverseProxy sends, from 127.0.0.1 as a reverse proxy
// would, events of several visitors through every path that takes the
// visitor's address from the request (POST /v1/events, Plausible's
// /api/event, the ingest WebSocket), all with one user agent, so that only
// the address tells the visitors apart. With 127.0.0.1 among the trusted
// proxies each visitor is their own; with another proxy trusted, every
// request comes from 127.0.0.1, one visitor, whatever the headers say.
func TestVisitorsBehindAReverseProxy(t *testing.T) {
	for _, tt := range []struct {
		trusted  string
		visitors map[string]string // path → visitor, by letter
	}{
		{"127.0.0.1", map[string]string{"/a": "A", "/b": "B", "/c": "A", "/d": "C", "/e": "D", "/f": "E"}},
		{"10.0.0.0/8", map[string]string{"/a": "A", "/b": "A", "/c": "A", "/d": "A", "/e": "A", "/f": "A"}},
	} {
		t.Run("trusted="+tt.trusted, func(t *testing.T) {
			db := chtest.Open(t)
			p := startPulse(t, nil, "dev", "--clickhouse", db.URL(), "--batch-interval", "50ms", "--trusted-proxies", tt.trusted)
			p.waitReady(t)
			const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
			post := func(path, body string, header map[string]string) {
				t.Helper()
				req, _ := http.NewRequest("POST", p.base+path, strings.NewReader(body))
				req.Header.Set("User-Agent", ua)
				for k, v := range header {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 202 {
					t.Fatalf("POST %s = %d %s", path, resp.StatusCode, raw)
				}
			}
			key := p.siteKey(t)
			page := func(path string) string { return `{"type":"page","url":"https://demo.localhost` + path + `"}` }
			post("/v1/events?site="+key, page("/a"), map[string]string{"X-Forwarded-For": "203.0.113.1"})
			// The left-most entry is the client's own claim: not believed.
			post("/v1/events?site="+key, page("/b"), map[string]string{"X-Forwarded-For": "203.0.113.1, 203.0.113.2"})
			post("/v1/events?site="+key, page("/c"), map[string]string{"X-Forwarded-For": "198.51.100.7, 203.0.113.1"})
			post("/api/event", `{"n":"pageview","u":"https://demo.localhost/d","d":"demo.localhost"}`,
				map[string]string{"Forwarded": `for="[2001:db8:cafe::17]:4711";proto=https`})
			post("/api/event", `{"n":"pageview","u":"https://demo.localhost/e","d":"demo.localhost"}`,
				map[string]string{"Forwarded": `for=198.51.100.1, for=192.0.2.60;proto=https`})

			h := http.Header{"Origin": {p.base}, "User-Agent": {ua}, "X-Forwarded-For": {"198.51.100.77"}}
			ws, _, err := fws.DefaultDialer.Dial(strings.Replace(p.base, "http://", "ws://", 1)+"/v1/ingest?site="+key, h)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			for _, frame := range []string{`{"type":"hello","v":1}`, `{"type":"events","seq":1,"events":[` + page("/f") + `]}`} {
				if err := ws.WriteMessage(fws.TextMessage, []byte(frame)); err != nil {
					t.Fatal(err)
				}
				if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), `"welcome"`) && !strings.Contains(string(msg), `"ack"`) {
					t.Fatalf("answer to %s: %s %v", frame, msg, err)
				}
			}

			ws.Close()
			p.stop(t, syscall.SIGTERM) // the final flush writes every accepted event
			got := visitorsByPath(t, db)
			// The same letter must be the same visitor id, different letters different ids.
			ids := map[string]uint64{}
			for path, letter := range tt.visitors {
				id, ok := got[path]
				if !ok {
					t.Fatalf("no event stored for %s (stored %v)", path, got)
				}
				if prev, seen := ids[letter]; seen && prev != id {
					t.Fatalf("%s has visitor id %d, want the same visitor as the other %s paths (%d); stored %v", path, id, letter, prev, got)
				}
				ids[letter] = id
			}
			distinct := map[uint64]bool{}
			for _, id := range ids {
				distinct[id] = true
			}
			if len(distinct) != len(ids) {
				t.Fatalf("visitors %v by path %v: %d distinct ids, want %d", ids, got, len(distinct), len(ids))
			}
		})
	}
}

// visitorsByPath returns the visitor id of every stored event by path.
func visitorsByPath(t *testing.T, db *chdb.DB) map[string]uint64 {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT pathname, visitor_id FROM events FINAL ORDER BY pathname")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]uint64{}
	for rows.Next() {
		var path string
		var id uint64
		if err := rows.Scan(&path, &id); err != nil {
			t.Fatal(err)
		}
		if _, dup := got[path]; dup {
			t.Fatalf("two events for %s", path)
		}
		got[path] = id
	}
	return got
}
