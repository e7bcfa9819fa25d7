package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// sentEvent is one event a test sends, and sends again.
type sentEvent struct {
	id   string
	typ  string // page or track
	path string
	at   time.Time
}

// resendPath sends events to Pulse by one of its ways in, as one client.
type resendPath struct {
	name string // also the events' utm_source, which tells the paths' visits apart
	ua   string // a browser of its own: one visitor per path
	send func(t *testing.T, p *process, r resendPath, events []sentEvent)
}

func (r resendPath) url(e sentEvent) string {
	return "http://" + demoDomain + e.path + "?utm_source=" + r.name
}

// ourEvent is e in the wire format of docs/protocol.md.
func (r resendPath) ourEvent(e sentEvent) map[string]any {
	ev := map[string]any{"id": e.id, "type": e.typ, "ts": e.at.UnixMilli(), "url": r.url(e)}
	if e.typ == "track" {
		ev["name"] = "signup"
	}
	return ev
}

// TestResentEventsCountOnce sends, by each way in, a visitor's two visits,
// and sends some of their events again: a backdated resend while the node
// still remembers the visit (it lands in the visitor's later visit), and,
// after a restart has forgotten the recent ids and the open visits, resends
// that would start a visit of their own. The query API must answer what was
// sent once (1 visitor, 2 visits, 3 pageviews, 4 events, half of the visits
// bounced), and the same as SQL over the stored events, each counted once
// in the visit of its first copy.
//
// Visitor ids are keyed by the UTC day an event is received on. Each path
// sends its visitor's events in one request, and what it sends again is
// left out as stored whatever id its visitor gets then, so the test holds
// across midnight (Plausible's pair, below, excepted).
func TestResentEventsCountOnce(t *testing.T) {
	db := chtest.Open(t)
	dbURL := db.URL()
	data := t.TempDir()
	args := []string{"dev", "--clickhouse", dbURL, "--data", data, "--batch-interval", "50ms"}
	p := startPulse(t, nil, args...)
	p.waitReady(t)
	segmentKey := ingestKey(t, p, dbURL, data)

	now := time.Now().UTC().Truncate(time.Second)
	paths := []resendPath{
		{name: "ws", ua: firefox(128), send: sendWebSocket},
		{name: "http", ua: firefox(129), send: sendHTTP},
		{name: "segment", ua: firefox(130), send: func(t *testing.T, p *process, r resendPath, events []sentEvent) {
			sendSegment(t, p, segmentKey, r, events)
		}},
	}
	visits := map[string][]sentEvent{}
	for _, r := range paths {
		ev := func(typ, path string, ago time.Duration) sentEvent {
			return sentEvent{id: uuid.NewString(), typ: typ, path: path, at: now.Add(-ago)}
		}
		// Visit A, a bounce; visit B, 31 minutes later: two pages and a
		// signup. Every event is less than 35 minutes old, so the query API
		// reads these visits from sessions itself: it reads visits that
		// ended before that from the copies its Finalizer writes every
		// minute, which a visit stored after the last pass is not in yet.
		visits[r.name] = []sentEvent{ev("page", "/", 34*time.Minute),
			ev("page", "/pricing", 3*time.Minute), ev("page", "/signup", 2*time.Minute), ev("track", "/signup", time.Minute)}
		r.send(t, p, r, visits[r.name])
		// A's pageview again: the node's open visit of this visitor is B.
		r.send(t, p, r, visits[r.name][:1])
	}
	// Plausible's Events API has no event id and no time: the same request
	// again is another event, as it is for Plausible. The two requests are
	// one visitor's only when they are received on one UTC day: a pair that
	// midnight split is sent again as another visitor, from another source.
	plausible := "plausible"
	for try := 1; ; try++ {
		day := time.Now().UTC().Format(time.DateOnly)
		for range 2 {
			sendPlausible(t, p, firefox(130+try), plausible, "/")
		}
		if time.Now().UTC().Format(time.DateOnly) == day {
			break
		}
		plausible = fmt.Sprintf("plausible-%d", try+1)
	}

	// A restart forgets the recent ids and the open visits; the resends start
	// a new visit at B's second pageview (A's pageview started A, so its
	// resend lands in A again).
	p.stop(t, syscall.SIGTERM)
	p = startPulse(t, nil, args...)
	p.waitReady(t)
	api := login(t, p)
	for _, r := range paths {
		ev := visits[r.name]
		r.send(t, p, r, []sentEvent{ev[0], ev[2], ev[3]})
	}
	waitWritten(t, p)

	from, to := now.Add(-2*time.Hour), now.Add(time.Hour)
	want := []float64{1, 2, 3, 4, 50} // visitors, visits, pageviews, events, bounce_rate
	for _, r := range append(paths, resendPath{name: plausible}) {
		t.Run(r.name, func(t *testing.T) {
			got := api.query(t, r.name, from, to)
			sql := storedOnce(t, db, api.site, r.name, from, to)
			t.Logf("query API %v, SQL %v", got, sql)
			if !sameMetrics(got, sql) {
				t.Errorf("the query API answers %v (visitors, visits, pageviews, events, bounce_rate), SQL over the events counted once %v", got, sql)
			}
			if r.name == plausible {
				if w := []float64{1, 1, 2, 2, 0}; !sameMetrics(sql, w) {
					t.Errorf("SQL %v, want %v: two requests are two pageviews of one visit", sql, w)
				}
			} else if !sameMetrics(sql, want) {
				t.Errorf("SQL %v, want what was sent: %v", sql, want)
			}
		})
	}
	p.stop(t, syscall.SIGTERM)
}

func firefox(version int) string {
	return fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", version, version)
}

func sendWebSocket(t *testing.T, p *process, r resendPath, events []sentEvent) {
	t.Helper()
	h := http.Header{"Origin": {p.base}, "User-Agent": {r.ua}}
	c, _, err := fws.DefaultDialer.Dial(strings.Replace(p.base, "http", "ws", 1)+"/v1/ingest?site="+p.siteKey(t), h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list := make([]map[string]any, len(events))
	for i, e := range events {
		list[i] = r.ourEvent(e)
	}
	for _, f := range []any{map[string]any{"type": "hello", "v": 1}, map[string]any{"type": "events", "seq": 1, "events": list}} {
		if err := c.WriteJSON(f); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var f struct {
			Type string `json:"type"`
			Seq  int64  `json:"seq"`
		}
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("no ack: %v", err)
		}
		switch f.Type {
		case "ack":
			return
		case "welcome", "busy":
		default:
			t.Fatalf("the server answered %+v", f)
		}
	}
}

func sendHTTP(t *testing.T, p *process, r resendPath, events []sentEvent) {
	t.Helper()
	list := make([]map[string]any, len(events))
	for i, e := range events {
		list[i] = r.ourEvent(e)
	}
	body, _ := json.Marshal(list)
	req, _ := http.NewRequest("POST", p.base+"/v1/events?site="+p.siteKey(t), bytes.NewReader(body))
	req.Header.Set("User-Agent", r.ua)
	expect(t, req, 202)
}

func sendSegment(t *testing.T, p *process, key string, r resendPath, events []sentEvent) {
	t.Helper()
	batch := make([]map[string]any, len(events))
	for i, e := range events {
		m := map[string]any{"type": e.typ, "messageId": e.id, "timestamp": e.at.Format(time.RFC3339Nano), "anonymousId": "anon-" + r.name,
			"context": map[string]any{"userAgent": r.ua, "page": map[string]any{"url": r.url(e)}}}
		if e.typ == "track" {
			m["event"] = "signup"
		}
		batch[i] = m
	}
	body, _ := json.Marshal(map[string]any{"batch": batch})
	req, _ := http.NewRequest("POST", p.base+"/v1/batch", bytes.NewReader(body))
	req.SetBasicAuth(key, "")
	expect(t, req, 200)
}

func sendPlausible(t *testing.T, p *process, ua, source, path string) {
	t.Helper()
	body := fmt.Sprintf(`{"name":"pageview","url":"http://%s%s?utm_source=%s","domain":%q}`, demoDomain, path, source, demoDomain)
	req, _ := http.NewRequest("POST", p.base+"/api/event", strings.NewReader(body))
	req.Header.Set("User-Agent", ua)
	expect(t, req, 202)
}

func expect(t *testing.T, req *http.Request, status int) []byte {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s = %d %s, want %d", req.Method, req.URL.Path, resp.StatusCode, body, status)
	}
	return body
}

// waitWritten waits until the batcher holds no event: every accepted event
// is committed (or left out as stored already).
func waitWritten(t *testing.T, p *process) {
	t.Helper()
	buffered := regexp.MustCompile(`(?m)^pulse_ingest_buffered_events (\S+)$`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := buffered.FindSubmatch(body); m != nil && string(m[1]) == "0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events still buffered after 30 s: %s", buffered.Find(body))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// demoAPI calls the query API as the demo site's owner.
type demoAPI struct {
	base, token string
	site        string
}

func login(t *testing.T, p *process) demoAPI {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(p.dataDir, demoPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	a := demoAPI{base: p.base}
	var session struct{ Token string }
	a.call(t, "POST", "/api/v1/login", map[string]string{"email": demoEmail, "password": strings.TrimSpace(string(pw))}, &session)
	a.token = session.Token
	var me struct {
		Memberships []struct {
			OrgID string `json:"org_id"`
		}
	}
	a.call(t, "GET", "/api/v1/me", nil, &me)
	var sites []struct{ ID string }
	a.call(t, "GET", "/api/v1/orgs/"+me.Memberships[0].OrgID+"/sites", nil, &sites)
	a.site = sites[0].ID
	return a
}

func (a demoAPI) call(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if err := json.Unmarshal(expect(t, req, 200), out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// query asks the query API for the visits whose utm_source is source.
func (a demoAPI) query(t *testing.T, source string, from, to time.Time) []float64 {
	t.Helper()
	var res struct {
		Results []struct{ Metrics []float64 }
	}
	a.call(t, "POST", "/api/v1/query", map[string]any{
		"site_id": a.site, "metrics": []string{"visitors", "visits", "pageviews", "events", "bounce_rate"},
		"date_range": []string{from.Format(time.RFC3339), to.Format(time.RFC3339)},
		"filters":    [][]any{{"is", "visit:utm_source", []string{source}}},
	}, &res)
	if len(res.Results) != 1 {
		t.Fatalf("the query API answered %d rows, want 1", len(res.Results))
	}
	return res.Results[0].Metrics
}

// storedOnce answers the query API's question with SQL over the stored
// events, each counted once, in the visit of its first stored copy.
func storedOnce(t *testing.T, db *chdb.DB, site, source string, from, to time.Time) []float64 {
	t.Helper()
	const q = `SELECT toFloat64(uniqExact(visitor)), toFloat64(count()), toFloat64(sum(pageviews)), toFloat64(sum(events)),
		100 * countIf(pageviews = 1 AND events = 1) / count()
	FROM (
		SELECT visit, any(first_visitor) AS visitor, countIf(first_type = 'page') AS pageviews, count() AS events
		FROM (
			SELECT event_id, argMin(session_id, received_at) AS visit, argMin(visitor_id, received_at) AS first_visitor,
				argMin(type, received_at) AS first_type, argMin(utm_source, received_at) AS first_source, argMin(ts, received_at) AS first_ts
			FROM events WHERE site_id = toUUID(?) AND is_bot = 0 AND session_id != 0
			GROUP BY event_id
		)
		WHERE first_source = ? AND first_ts >= ? AND first_ts < ?
		GROUP BY visit
	)`
	got := make([]float64, 5)
	err := db.QueryRow(context.Background(), q, site, source, from, to).Scan(&got[0], &got[1], &got[2], &got[3], &got[4])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// sameMetrics compares metrics as the query API rounds them (one decimal).
func sameMetrics(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(math.Round(a[i]*10)-math.Round(b[i]*10)) > 0 {
			return false
		}
	}
	return true
}

// ingestKey creates an API key with the ingest scope for the demo
// organization through the CLI, and waits until the running server knows it.
func ingestKey(t *testing.T, p *process, dbURL, data string) string {
	t.Helper()
	env := map[string]string{"PULSE_CLICKHOUSE": dbURL, "PULSE_DATA": data}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "org", "list", "--json"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	var orgs []struct{ ID string }
	if err := json.Unmarshal(out.Bytes(), &orgs); err != nil || len(orgs) != 1 {
		t.Fatalf("orgs = %s (%v)", out.String(), err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"admin", "key", "create", "--org", orgs[0].ID, "--name", "segment", "--scopes", "ingest", "--json"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	var key struct{ Secret string }
	_ = json.Unmarshal(out.Bytes(), &key)
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("POST", p.base+"/v1/batch", strings.NewReader(`{"batch":[]}`))
		req.SetBasicAuth(key.Secret, "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return key.Secret
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still refuses the new key after 15s: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
