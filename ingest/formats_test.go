package ingest

import (
	"context"
	"encoding/base64"
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
	b := NewBatcher(BatcherConfig{Rows: 1000, FlushInterval: 20 * time.Millisecond}, NewWriter(db), log, m)
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

func TestSegmentTrackingAPI(t *testing.T) {
	e := newFormatsEnv(t)
	batch := `{"batch":[
		{"type":"track","event":"Order Completed","messageId":"ajs-next-1","userId":"u-42","timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) + `",
		 "properties":{"revenue":42.5,"currency":"EUR","items":[{"sku":"a"}]},"context":{"page":{"url":"https://shop.example/checkout"},"userAgent":"Mozilla/5.0"}},
		{"type":"page","name":"Pricing","messageId":"ajs-next-2","anonymousId":"anon-1","properties":{"url":"https://www.shop.example/pricing","title":"Pricing"}},
		{"type":"identify","userId":"u-42","messageId":"6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c","traits":{"plan":"pro"}},
		{"type":"track","messageId":"ajs-next-3","context":{"page":{"url":"https://shop.example/"}}}
	]}`
	status, body, _ := e.do(t, "POST", "/v1/batch", batch, basic(e.ingestKey))
	if status != 200 || !strings.Contains(body, `"accepted":3`) || !strings.Contains(body, `"field":"name"`) {
		t.Fatalf("/v1/batch = %d %s; want 3 accepted and the nameless track rejected", status, body)
	}
	// A retried batch is stored once: message ids map to the same event ids.
	if status, body, _ := e.do(t, "POST", "/v1/batch", batch, basic(e.ingestKey)); status != 200 {
		t.Fatalf("retry = %d %s", status, body)
	}
	if status, body, _ := e.do(t, "POST", "/v1/track", `{"event":"Signed Up","messageId":"m-4","userId":"u-7","properties":{"plan":"free"},"context":{"page":{"url":"https://shop.example/signup"}}}`, basic(e.ingestKey)); status != 200 {
		t.Fatalf("/v1/track = %d %s", status, body)
	}

	for _, tt := range []struct {
		name, path, body string
		header           map[string]string
		status           int
		want             string
	}{
		{"no key", "/v1/track", `{"event":"x"}`, nil, 401, "ingest scope"},
		{"read-only key", "/v1/track", `{"event":"x"}`, basic(e.readKey), 401, "ingest scope"},
		{"not a batch", "/v1/batch", `[1,2]`, basic(e.ingestKey), 400, "batch"},
		{"too large", "/v1/batch", `{"batch":[` + strings.Repeat(" ", MaxSegmentBatchBytes) + `]}`, basic(e.ingestKey), 413, "500 KB"},
		{"message too large", "/v1/track", `{"event":"x","properties":{"p":"` + strings.Repeat("x", MaxSegmentMessageBytes) + `"}}`, basic(e.ingestKey), 400, "32 KB"},
		{"bad timestamp", "/v1/track", `{"event":"x","timestamp":"yesterday"}`, basic(e.ingestKey), 400, "ISO 8601"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := e.do(t, "POST", tt.path, tt.body, tt.header)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("= %d %s, want %d mentioning %q", status, body, tt.status, tt.want)
			}
		})
	}

	got := e.rows(t)
	want := []string{
		"identify   u-42 plan=pro",
		"page Pricing /pricing",
		"track Order Completed /checkout u-42 currency=EUR,items=[{\"sku\":\"a\"}],revenue=42.5",
		"track Signed Up /signup u-7 plan=free",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stored:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSegmentNeedsAURLWhenTheOrgHasSeveralSites(t *testing.T) {
	e := newFormatsEnv(t)
	if _, err := e.store.CreateSite(context.Background(), e.org.ID, auth.SiteInput{Domain: "blog.example"}); err != nil {
		t.Fatal(err)
	}
	status, body, _ := e.do(t, "POST", "/v1/track", `{"event":"x","messageId":"m1"}`, basic(e.ingestKey))
	if status != 400 || !strings.Contains(body, "context.page.url") {
		t.Fatalf("= %d %s, want the message rejected naming context.page.url", status, body)
	}
	status, body, _ = e.do(t, "POST", "/v1/track", `{"event":"x","messageId":"m2","context":{"page":{"url":"https://blog.example/a"}}}`, basic(e.ingestKey))
	if status != 200 {
		t.Fatalf("with a URL on the second site = %d %s", status, body)
	}
	if err := e.flushBatcher(); err != nil {
		t.Fatal(err)
	}
	var site string
	if err := e.db.QueryRow(context.Background(), "SELECT toString(site_id) FROM events").Scan(&site); err != nil || site == e.site.ID.String() {
		t.Fatalf("stored for site %s (err %v), want the blog's site", site, err)
	}
}

func TestPlausibleEventsAPI(t *testing.T) {
	e := newFormatsEnv(t)
	browser := map[string]string{"Content-Type": "text/plain", "Origin": "https://shop.example", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}
	status, body, header := e.do(t, "POST", "/api/event", `{"n":"pageview","u":"https://shop.example/docs?ref=x","d":"shop.example","r":"https://news.ycombinator.com/"}`, browser)
	if status != 202 || body != "ok" || header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("pageview = %d %q ACAO %q", status, body, header.Get("Access-Control-Allow-Origin"))
	}
	status, body, _ = e.do(t, "POST", "/api/event", `{"name":"Purchase","url":"https://shop.example/thanks","domain":"other.example,shop.example",
		"props":"{\"plan\":\"pro\"}","revenue":{"currency":"USD","amount":"19.99"}}`, browser)
	if status != 202 {
		t.Fatalf("custom event = %d %s", status, body)
	}
	for _, tt := range []struct {
		name, body string
		header     map[string]string
		status     int
	}{
		{"unknown domain", `{"n":"pageview","u":"https://x.example/","d":"x.example"}`, browser, 400},
		{"foreign origin", `{"n":"pageview","u":"https://shop.example/","d":"shop.example"}`, map[string]string{"Origin": "https://evil.example"}, 403},
		{"not JSON", `n=pageview`, browser, 400},
	} {
		if status, body, _ := e.do(t, "POST", "/api/event", tt.body, tt.header); status != tt.status {
			t.Errorf("%s: = %d %s, want %d", tt.name, status, body, tt.status)
		}
	}
	// Global Privacy Control: answered like Plausible, nothing stored.
	gpc := map[string]string{"Origin": "https://shop.example", "Sec-GPC": "1"}
	if status, _, _ := e.do(t, "POST", "/api/event", `{"n":"pageview","u":"https://shop.example/gpc","d":"shop.example"}`, gpc); status != 202 {
		t.Fatalf("GPC = %d", status)
	}

	got := e.rows(t)
	want := []string{"page pageview /docs", "track Purchase /thanks  plan=pro,revenue_amount=19.99,revenue_currency=USD"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stored:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
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
