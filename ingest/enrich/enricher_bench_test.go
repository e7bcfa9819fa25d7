package enrich

import (
	"context"
	"encoding/json"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// benchEventJSON is a typical pageview as the tracker sends it (about 290 bytes).
const benchEventJSON = `{"id":"6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c","type":"page","name":"pageview","ts":1764000000000,` +
	`"url":"https://shop.example/products/42?utm_source=newsletter&utm_medium=email","referrer":"https://www.google.com/",` +
	`"title":"Product 42","props":{"plan":"pro","seats":"3"}}`

// BenchmarkEnrichEvent measures enrichment per event over HTTP, where every
// event carries its request's address and user agent: visitor id, cached user
// agent, geography, session and source. Its same-run limit is decoding the
// same event from JSON, the cheapest step every event must take anyway; a
// WebSocket connection derives the client once, so its events cost less.
func BenchmarkEnrichEvent(b *testing.B) {
	e, err := New(context.Background(), chtest.Open(b), Config{GeoIPPath: testGeoDB(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	site := uuid.New()
	at := time.Now()
	agents := make([]string, 0, len(userAgents))
	for _, tt := range userAgents {
		agents = append(agents, tt.ua)
	}
	ips := []netip.Addr{netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("193.99.144.80"), netip.MustParseAddr("2001:4860:4860::8888")}
	query := url.Values{"utm_source": {"newsletter"}, "utm_medium": {"email"}}

	i := 0
	for b.Loop() {
		c := e.Client(site, ips[i%len(ips)], agents[i%len(agents)], at)
		e.Session(site, c.VisitorID, at)
		ClassifySource(query, "https://www.google.com/", "shop.example")
		i++
	}
	perEvent := float64(b.Elapsed().Nanoseconds()) / float64(b.N)

	var ev struct {
		ID, Type, Name, URL, Referrer, Title string
		TS                                   int64
		Props                                map[string]string
	}
	raw := []byte(benchEventJSON)
	const decodes = 200_000
	start := time.Now()
	for range decodes {
		if err := json.Unmarshal(raw, &ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perEvent, "ns/event")
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/decodes, "limit-ns/event")
}
