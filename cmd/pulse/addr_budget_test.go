package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// PULSE_ADDRESS_EVENTS_PER_DAY (--address-events-per-day) sets how many
// events one client address may send a tenant per day: beyond, 429.
func TestAddressEventsPerDaySetting(t *testing.T) {
	db := chtest.Open(t)
	p := startPulse(t, []string{"PULSE_ADDRESS_EVENTS_PER_DAY=3"}, "dev", "--clickhouse", db.URL())
	p.waitReady(t)
	key := p.siteKey(t)
	post := func(n int) (int, string) {
		t.Helper()
		events := make([]string, n)
		for i := range events {
			events[i] = `{"type":"page","url":"https://demo.localhost/budget"}`
		}
		resp, err := http.Post(p.base+"/v1/events?site="+key, "text/plain", strings.NewReader("["+strings.Join(events, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if status, body := post(3); status != 202 {
		t.Fatalf("3 events of a budget of 3 = %d %s, want 202", status, body)
	}
	if status, body := post(1); status != 429 || !strings.Contains(body, auth.ReasonAddressEventsPerDay) {
		t.Fatalf("a 4th event of a budget of 3 = %d %s, want 429 %s", status, body, auth.ReasonAddressEventsPerDay)
	}
}
