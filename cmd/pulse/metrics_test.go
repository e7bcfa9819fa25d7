package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// requestsLine is one series of pulse_http_requests_total.
var requestsLine = regexp.MustCompile(`(?m)^pulse_http_requests_total\{method="([^"]*)",route="([^"]*)",status="(\d+)"\} (\d+)$`)

// TestMetricsSurviveMixedMethods sends a few hundred requests of every method
// over kept-alive connections, where the server reuses its request buffers,
// and checks that /metrics still answers and counts each method as sent.
func TestMetricsSurviveMixedMethods(t *testing.T) {
	db := chtest.Open(t)
	p := startPulse(t, nil, "serve", "--clickhouse", db.URL())
	p.waitReady(t)

	methods := []string{"GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH", "HEAD", "PURGE"}
	paths := []string{"/healthz", "/v1/events", "/v1/no/such/endpoint", "/metrics", "/js/pulse.js", "/api/v1/me"}
	sent := map[string]int{}
	client := &http.Client{}
	for i := range 480 {
		m := methods[i%len(methods)]
		path := paths[(i/len(methods)+i)%len(paths)]
		req, err := http.NewRequest(m, p.base+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", m, path, err)
		}
		io.Copy(io.Discard, resp.Body) // so that the connection is kept for the next request
		resp.Body.Close()
		sent[m]++
	}

	resp, err := client.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics after mixed methods = %d %s", resp.StatusCode, body)
	}
	valid := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
		"DELETE": true, "CONNECT": true, "OPTIONS": true, "TRACE": true, "other": true}
	counted := map[string]int{}
	for _, m := range requestsLine.FindAllStringSubmatch(string(body), -1) {
		if !valid[m[1]] {
			t.Errorf("method label %q in %s", m[1], m[0])
		}
		if m[2] == "/readyz" {
			continue // waitReady's requests
		}
		n, _ := strconv.Atoi(m[4])
		counted[m[1]] += n
	}
	// Fiber answers a method it does not route (PURGE) with 400 before any
	// middleware runs: it is not counted.
	for _, m := range methods[:len(methods)-1] {
		if counted[m] != sent[m] {
			t.Errorf("pulse_http_requests_total for %s = %d, want %d (sent)", m, counted[m], sent[m])
		}
	}
	if counted["PURGE"] != 0 || counted["other"] != 0 {
		t.Errorf("counted PURGE %d, other %d; want 0 (refused before the middleware)", counted["PURGE"], counted["other"])
	}
}
