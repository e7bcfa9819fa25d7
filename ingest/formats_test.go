package ingest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// formatsEnv serves the foreign formats and POST /v1/events on 127.0.0.1 with a
// real auth store, batcher and ClickHouse.
type formatsEnv struct {
	base         string
	db           *chdb.DB
	store        *auth.Store
	org          auth.Org
	site         auth.Site
	ingestKey    string
	readKey      string
	flushBatcher func() error
}

func newFormatsEnv(t *testing.T) *formatsEnv {
	t.Helper()
	ctx := context.Background()
	db := chtest.Open(t)
	log := slog.New(slog.DiscardHandler)
	store := authtest.Store(t, db, auth.Config{Logger: log})
	tn := authtest.NewTenant(t, store, "shop.example", "https://shop.example")
	user, org, site := tn.Owner, tn.Org, tn.Site
	_, ingestKey, err := store.CreateAPIKey(ctx, org.ID, "server", []auth.Scope{auth.ScopeIngest}, user.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, readKey, err := store.CreateAPIKey(ctx, org.ID, "reports", []auth.Scope{auth.ScopeRead}, user.ID)
	if err != nil {
		t.Fatal(err)
	}

	m := NewMetrics(prometheus.NewRegistry())
	b := NewBatcher(BatcherConfig{Rows: 1000, FlushInterval: 20 * time.Millisecond}, NewWriter(db).WithMeter(store), log, m)
	bctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(bctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-errc })

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	NewFormatsHandler(store, b, log, m).Register(app)
	sites := StaticSites{site.PublicKey: {TenantID: org.ID, ID: site.ID, PublicKey: site.PublicKey, AllowedOrigins: site.AllowedOrigins},
		"pk_dnt": {TenantID: org.ID, ID: site.ID, PublicKey: "pk_dnt", HonorDNT: true}}
	h := NewHTTPHandler(sites, b, log, m).WithQuotas(store).WithDedup(NewServer(Config{}, store, b, log, m))
	app.Post("/v1/events", h.PostEvents)
	app.Options("/v1/events", h.Preflight)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	t.Cleanup(func() {
		_ = app.ShutdownWithTimeout(5 * time.Second)
		<-served
		_ = stop()
	})
	return &formatsEnv{base: "http://" + ln.Addr().String(), db: db, store: store, org: org, site: site,
		ingestKey: ingestKey, readKey: readKey, flushBatcher: stop}
}

func (e *formatsEnv) do(t *testing.T, method, path, body string, header map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), resp.Header
}

// rows returns "type name path user props" per stored event, FINAL, ordered.
func (e *formatsEnv) rows(t *testing.T) []string {
	t.Helper()
	if err := e.flushBatcher(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rows, err := e.db.Query(ctx, `SELECT type, name, pathname, user_id, arrayStringConcat(arrayMap((k, v) -> concat(k, '=', v), prop_keys, prop_values), ',') AS props
		FROM events FINAL ORDER BY type, name, pathname, user_id, props, event_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, name, path, user, props string
		if err := rows.Scan(&typ, &name, &path, &user, &props); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(strings.Join([]string{typ, name, path, user, props}, " ")))
	}
	return out
}

func basic(key string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":")), "Content-Type": "application/json"}
}

// storedRow is every column a foreign format fills, as text.
type storedRow struct {
	ID, Type, Name, Host, Path, Query, Title, Referrer string
	UTM                                                [5]string
	User, Group, Previous, Context                     string
	NonInteractive                                     uint8
	TS, Received                                       time.Time
	Browser, Country                                   string
	Props                                              string // k=v&k=v, sorted by name
}

// stored returns the stored events by event id, FINAL.
func (e *formatsEnv) stored(t *testing.T) map[string]storedRow {
	t.Helper()
	if err := e.flushBatcher(); err != nil {
		t.Fatal(err)
	}
	rows, err := e.db.Query(context.Background(), `SELECT toString(event_id), type, name, hostname, pathname, query, title, referrer,
		utm_source, utm_medium, utm_campaign, utm_term, utm_content, user_id, group_id, previous_id, context, non_interactive,
		ts, received_at, browser, country, arrayStringConcat(arrayMap((k, v) -> concat(k, '=', v), prop_keys, prop_values), '&')
		FROM events FINAL ORDER BY event_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]storedRow{}
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.ID, &r.Type, &r.Name, &r.Host, &r.Path, &r.Query, &r.Title, &r.Referrer,
			&r.UTM[0], &r.UTM[1], &r.UTM[2], &r.UTM[3], &r.UTM[4], &r.User, &r.Group, &r.Previous, &r.Context, &r.NonInteractive,
			&r.TS, &r.Received, &r.Browser, &r.Country, &r.Props); err != nil {
			t.Fatal(err)
		}
		out[r.ID] = r
	}
	return out
}

func TestPostEventsCORSAndGPC(t *testing.T) {
	e := newFormatsEnv(t)
	key := "?site=" + e.site.PublicKey
	status, _, header := e.do(t, "OPTIONS", "/v1/events"+key, "", map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
	if status != 204 || header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("preflight from the site = %d ACAO %q", status, header.Get("Access-Control-Allow-Origin"))
	}
	if status, _, header := e.do(t, "OPTIONS", "/v1/events"+key, "", map[string]string{"Origin": "https://evil.example"}); status != 403 || header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from elsewhere = %d ACAO %q", status, header.Get("Access-Control-Allow-Origin"))
	}
	ev := `{"type":"page","url":"https://shop.example/a"}`
	if status, body, _ := e.do(t, "POST", "/v1/events"+key, ev, map[string]string{"Origin": "https://evil.example"}); status != 403 {
		t.Fatalf("POST from a foreign origin = %d %s", status, body)
	}
	if status, body, _ := e.do(t, "POST", "/v1/events"+key, ev, map[string]string{"Origin": "https://shop.example", "Sec-GPC": "1"}); status != 202 || !strings.Contains(body, "Sec-GPC") {
		t.Fatalf("POST with GPC = %d %s", status, body)
	}
	if status, body, header := e.do(t, "POST", "/v1/events"+key, ev, map[string]string{"Origin": "https://shop.example"}); status != 202 || header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("POST from the site = %d %s", status, body)
	}
	// Do Not Track counts only for sites that ask for it.
	if status, body, _ := e.do(t, "POST", "/v1/events?site=pk_dnt", ev, map[string]string{"DNT": "1"}); status != 202 || !strings.Contains(body, "DNT") {
		t.Fatalf("POST with DNT to a site honouring it = %d %s", status, body)
	}
	if status, body, _ := e.do(t, "POST", "/v1/events"+key, ev, map[string]string{"DNT": "1", "Origin": "https://shop.example"}); status != 202 || strings.Contains(body, "declined") {
		t.Fatalf("POST with DNT to a site not honouring it = %d %s", status, body)
	}

	// Over the tenant's events-per-second quota: 429 with Retry-After, nothing taken.
	if _, err := e.store.SetQuota(context.Background(), e.org.ID, auth.Quota{EventsPerSecond: 1, EventsPerMonth: 1 << 40, MaxConnections: 10}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	many := "[" + strings.TrimSuffix(strings.Repeat(ev+",", 50), ",") + "]"
	// One request may spend a second's worth in advance (the bucket goes into
	// debt rather than splitting a request); the next one is refused.
	if status, body, _ := e.do(t, "POST", "/v1/events"+key, many, nil); status != 202 {
		t.Fatalf("first POST at quota 1/s = %d %s", status, body)
	}
	if status, body, header := e.do(t, "POST", "/v1/events"+key, many, nil); status != 429 || header.Get("Retry-After") == "" {
		t.Fatalf("POST over quota = %d %s Retry-After %q", status, body, header.Get("Retry-After"))
	}
	if got := e.rows(t); len(got) != 52 {
		t.Fatalf("stored %d events, want the two sent without GPC or an honoured DNT and the 50 within quota", len(got))
	}
}

func TestPostEventsStoresAResentIDOnce(t *testing.T) {
	e := newFormatsEnv(t)
	body := `[{"id":"0b8a1c7e-5d3f-4a2b-9c1d-7e6f5a4b3c2d","type":"page","url":"https://shop.example/a"}]`
	for range 3 { // say, the tracker's beacon at pagehide after the socket already sent it
		if status, resp, _ := e.do(t, "POST", "/v1/events?site="+e.site.PublicKey, body, nil); status != 202 || !strings.Contains(resp, `"accepted":1`) {
			t.Fatalf("POST = %d %s", status, resp)
		}
	}
	if err := e.flushBatcher(); err != nil {
		t.Fatal(err)
	}
	var raw uint64
	if err := e.db.QueryRow(context.Background(), "SELECT count() FROM events").Scan(&raw); err != nil || raw != 1 {
		t.Fatalf("%d raw rows (err %v), want the event written once", raw, err)
	}
}

// FuzzSegmentMessage feeds outside messages to the Segment translation: it
// never panics, and what it accepts is an event of our format.
func FuzzSegmentMessage(f *testing.F) {
	f.Add(`{"type":"track","event":"x","userId":"u","properties":{"a":[1],"b":null},"context":{"ip":"192.0.2.1","campaign":{"name":"c"}}}`)
	f.Add(`{"type":"alias","userId":1,"previousId":"p","timestamp":"2026-11-24T12:00:00Z","sentAt":"2026-11-24T12:00:01Z"}`)
	f.Add(`{"type":"page","anonymousId":"a","category":"c","properties":{"url":"https://a.example/","category":"c"}}`)
	sites := []auth.Site{{Domain: "a.example"}}
	now := time.Now()
	f.Fuzz(func(t *testing.T, msg string) {
		re, _, evErr := segmentEvent(json.RawMessage(msg), 0, "", segmentBatch{}, sites, now)
		if evErr != nil {
			return
		}
		if !json.Valid(re.raw) || re.foreign == nil || re.foreign.context != "" && !json.Valid([]byte(re.foreign.context)) {
			t.Fatalf("%s became %s (context %q)", msg, re.raw, re.foreign.context)
		}
	})
}

// FuzzPlausibleEvent feeds outside bodies to the Plausible translation: it
// never panics, and what it accepts is an event of our format.
func FuzzPlausibleEvent(f *testing.F) {
	f.Add(`{"n":"engagement","u":"https://a.example/#x","d":"a.example","sd":"130","e":5,"h":1,"p":"{\"a\":1}","v":36}`)
	f.Add(`{"name":404,"url":"https://a.example/","$":{"amount":"1.5","currency":"EUR"},"i":false}`)
	f.Fuzz(func(t *testing.T, body string) {
		var b plausibleBody
		if json.Unmarshal([]byte(body), &b) != nil {
			return
		}
		raw, ff, perr := plausibleEvent(b)
		if perr != nil {
			return
		}
		if !json.Valid(raw) || ff == nil || ff.context != "" && !json.Valid([]byte(ff.context)) {
			t.Fatalf("%s became %s", body, raw)
		}
	})
}
