package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// TestUsageCountsEveryStoredEvent checks that the usage API counts each
// stored event of the org once, on the UTC day it was received: the demo's
// back-filled history (written straight into ClickHouse), its live visitors,
// and events sent by every way in (WebSocket, /v1/events, Segment,
// Plausible), some of them more than once: twice in one request, again while
// the node remembers them, and again after a restart has forgotten them.
// Each day the usage must say what SQL over the stored events says.
func TestUsageCountsEveryStoredEvent(t *testing.T) {
	db := chtest.Open(t)
	dbURL := db.URL()
	data := t.TempDir()
	args := []string{"dev", "--demo", "--demo-visits", "300", "--clickhouse", dbURL, "--data", data, "--batch-interval", "200ms"}
	p := startPulse(t, nil, args...)
	p.waitReady(t)
	waitDemoHistory(t, p)
	segmentKey := ingestKey(t, p, dbURL, data)

	now := time.Now().UTC().Truncate(time.Second)
	paths := []resendPath{
		{name: "ws", ua: firefox(128), send: sendWebSocket},
		{name: "http", ua: firefox(129), send: sendHTTP},
		{name: "segment", ua: firefox(130), send: func(t *testing.T, p *process, r resendPath, events []sentEvent) {
			sendSegment(t, p, segmentKey, r, events)
		}},
	}
	sent := map[string][]sentEvent{}
	for _, r := range paths {
		ev := func(typ, path string, ago time.Duration) sentEvent {
			return sentEvent{id: uuid.NewString(), typ: typ, path: path, at: now.Add(-ago)}
		}
		events := []sentEvent{ev("page", "/", 3*time.Minute), ev("page", "/pricing", 2*time.Minute), ev("track", "/pricing", time.Minute)}
		sent[r.name] = events
		r.send(t, p, r, append(events, events[1])) // one event twice in the request
		r.send(t, p, r, events[:2])                // again, while the node remembers them
	}
	// Plausible's Events API has no event id: the same request again is
	// another event, as it is for Plausible.
	sendPlausible(t, p, firefox(131), "plausible", "/")
	sendPlausible(t, p, firefox(131), "plausible", "/")
	p.postEvents(t, 5)
	// SIGTERM: the batcher writes what it holds, then the usage counters.
	p.stop(t, syscall.SIGTERM)

	// A restart forgets the recent ids: the writer finds the resends stored.
	p = startPulse(t, nil, args...)
	p.waitReady(t)
	waitDemoHistory(t, p)
	for _, r := range paths {
		r.send(t, p, r, sent[r.name])
	}
	p.stop(t, syscall.SIGTERM)

	// The same data served without demo traffic: nothing changes any more.
	p = startPulse(t, nil, "serve", "--clickhouse", dbURL, "--data", data)
	p.waitReady(t)
	api := login(t, p)
	var orgs []struct{ ID string }
	api.call(t, "GET", "/api/v1/orgs", nil, &orgs)
	if len(orgs) != 1 {
		t.Fatalf("orgs = %+v, want the demo's", orgs)
	}
	today := time.Now().UTC()
	var usage struct {
		Days []struct {
			Day    time.Time
			Events uint64
		}
	}
	api.call(t, "GET", "/api/v1/orgs/"+orgs[0].ID+"/usage?from="+today.AddDate(0, 0, -40).Format(time.DateOnly)+"&to="+today.Format(time.DateOnly), nil, &usage)
	counted := map[string]uint64{}
	for _, d := range usage.Days {
		if d.Events > 0 {
			counted[d.Day.UTC().Format(time.DateOnly)] = d.Events
		}
	}

	ctx := context.Background()
	stored := map[string]uint64{}
	rows, err := db.Query(ctx, `SELECT toString(toDate(received_at)) AS d, uniqExact(event_id) FROM events
		WHERE tenant_id = toUUID(?) GROUP BY d ORDER BY d`, orgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var perDay uint64
	for rows.Next() {
		var d string
		var n uint64
		if err := rows.Scan(&d, &n); err != nil {
			t.Fatal(err)
		}
		stored[d] = n
		perDay += n
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	var distinct uint64
	if err := db.QueryRow(ctx, "SELECT uniqExact(event_id) FROM events WHERE tenant_id = toUUID(?)", orgs[0].ID).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if perDay != distinct || distinct < 1000 {
		t.Fatalf("ClickHouse holds %d events of the org, %d summed over the days they were received: the test expects each on one day and the demo's history", distinct, perDay)
	}
	var total uint64
	for d, n := range counted {
		total += n
		if n != stored[d] {
			t.Errorf("%s: usage says %d events, ClickHouse holds %d received that day", d, n, stored[d])
		}
	}
	for d, n := range stored {
		if _, ok := counted[d]; !ok {
			t.Errorf("%s: usage says nothing, ClickHouse holds %d events received that day", d, n)
		}
	}
	if total != distinct {
		t.Errorf("usage counts %d events in all, ClickHouse holds %d", total, distinct)
	}
	for _, r := range paths {
		var n uint64
		if err := db.QueryRow(ctx, "SELECT uniqExact(event_id) FROM events WHERE tenant_id = toUUID(?) AND utm_source = ?", orgs[0].ID, r.name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != uint64(len(sent[r.name])) {
			t.Errorf("%s: ClickHouse holds %d of the %d events sent", r.name, n, len(sent[r.name]))
		}
	}
}

// waitDemoHistory waits until `pulse dev --demo` has written its history.
func waitDemoHistory(t *testing.T, p *process) {
	t.Helper()
	waitFor(t, p, 4*time.Minute, func() string {
		if out := p.stdout.String(); strings.Contains(out, `msg="demo history failed`) {
			t.Fatalf("the demo history failed:\n%s", out)
		} else if !strings.Contains(out, `msg="demo history written"`) {
			return "the demo history is not written"
		}
		return ""
	})
}
