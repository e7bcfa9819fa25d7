package ingest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// ingestServer is POST /v1/events in front of a real batcher and ClickHouse.
type ingestServer struct {
	app  *fiber.App
	db   *chdb.DB
	site Site
	stop func() error
}

func newIngestServer(t *testing.T) *ingestServer {
	t.Helper()
	db := chtest.Open(t)
	site := Site{TenantID: uuid.New(), ID: uuid.New(), PublicKey: "pk_test"}
	log := slog.New(slog.DiscardHandler)
	m := NewMetrics(prometheus.NewRegistry())
	b := NewBatcher(BatcherConfig{Rows: 1000, FlushInterval: 20 * time.Millisecond}, NewWriter(db), log, m)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-errc })
	t.Cleanup(func() { _ = stop() })

	app := fiber.New()
	app.Post("/v1/events", NewHTTPHandler(StaticSites{site.PublicKey: site}, b, log, m).PostEvents)
	return &ingestServer{app: app, db: db, site: site, stop: stop}
}

func (s *ingestServer) post(t *testing.T, query, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/events"+query, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := s.app.Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func TestPostEventsStoresValidEventsOnce(t *testing.T) {
	s := newIngestServer(t)
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	body := `[
		{"id":"` + ids[0] + `","type":"page","url":"https://shop.example/pricing?utm_source=news","referrer":"https://search.example/","title":"Pricing"},
		{"id":"` + ids[1] + `","type":"track","name":"signup","url":"https://shop.example/signup","props":{"plan":"pro","seats":3}},
		{"type":"page","url":"not a url"},
		{"id":"` + ids[2] + `","type":"identify"}
	]`
	status, out := s.post(t, "?site=pk_test", body)
	if status != 202 || out["accepted"] != float64(3) {
		t.Fatalf("answer %d %v, want 202 with 3 accepted", status, out)
	}
	rejected := out["rejected"].([]any)
	if len(rejected) != 1 || rejected[0].(map[string]any)["index"] != float64(2) || rejected[0].(map[string]any)["field"] != "url" {
		t.Fatalf("rejected = %v, want event 2's url", rejected)
	}

	// The tracker resends the same events (say, after a lost acknowledgement).
	if status, out := s.post(t, "?site=pk_test", body); status != 202 {
		t.Fatalf("resend answered %d %v", status, out)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	if err := s.db.Exec(ctx, "OPTIMIZE TABLE events FINAL"); err != nil {
		t.Fatal(err)
	}
	var rows, distinct uint64
	err := s.db.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM events FINAL WHERE tenant_id = toUUID(?) AND site_id = toUUID(?)",
		s.site.TenantID.String(), s.site.ID.String()).Scan(&rows, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 3 || distinct != 3 {
		t.Fatalf("stored %d rows with %d distinct ids, want each of the 3 valid events once", rows, distinct)
	}

	var (
		name, host, path, utm, refHost, title string
		keys, values                          []string
	)
	err = s.db.QueryRow(ctx, "SELECT name, hostname, pathname, utm_source, referrer_host, title, prop_keys, prop_values FROM events FINAL WHERE event_id = toUUID(?)", ids[0]).
		Scan(&name, &host, &path, &utm, &refHost, &title, &keys, &values)
	if err != nil {
		t.Fatal(err)
	}
	if name != "pageview" || host != "shop.example" || path != "/pricing" || utm != "news" || refHost != "search.example" || title != "Pricing" {
		t.Fatalf("stored pageview = %q %q %q %q %q %q", name, host, path, utm, refHost, title)
	}
	err = s.db.QueryRow(ctx, "SELECT prop_keys, prop_values FROM events FINAL WHERE event_id = toUUID(?)", ids[1]).Scan(&keys, &values)
	if err != nil || strings.Join(keys, ",") != "plan,seats" || strings.Join(values, ",") != "pro,3" {
		t.Fatalf("stored props = %v %v (err %v)", keys, values, err)
	}
}

func TestPostEventsRefusesBadRequests(t *testing.T) {
	s := newIngestServer(t)
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"track","name":"x"},`, MaxEventsPerRequest+1), ",") + "]"
	tests := []struct {
		name, query, body string
		status            int
		want              string
	}{
		{"no site key", "", `[]`, 400, "site query parameter is required"},
		{"unknown site key", "?site=pk_nope", `[]`, 404, `"pk_nope" is not known`},
		{"not JSON", "?site=pk_test", `hello`, 400, "JSON array of events"},
		{"too large", "?site=pk_test", `["` + strings.Repeat("x", MaxRequestBytes) + `"]`, 413, "more than the limit"},
		{"too many events", "?site=pk_test", many, 413, "events in one request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := s.post(t, tt.query, tt.body)
			msg, _ := out["error"].(string)
			if status != tt.status || !strings.Contains(msg, tt.want) {
				t.Fatalf("answer %d %q, want %d containing %q", status, msg, tt.status, tt.want)
			}
		})
	}
	t.Run("every event invalid", func(t *testing.T) {
		status, out := s.post(t, "?site=pk_test", `[{"type":"nope"}]`)
		if status != 400 || out["accepted"] != float64(0) || len(out["rejected"].([]any)) != 1 {
			t.Fatalf("answer %d %v, want 400 listing the rejected event", status, out)
		}
	})
}
