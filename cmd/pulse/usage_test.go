package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

var demoCredentials = regexp.MustCompile(`log in:\s+(\S+) / (\S+)`)

// The usage API counts every stored event of the org: the demo's back-filled
// history (written straight into ClickHouse), its live visitors and events
// posted to /v1/events, each day as many as ClickHouse holds for that day.
func TestUsageCountsEveryStoredEvent(t *testing.T) {
	db := chtest.Open(t)
	dbURL := chdb.URL(db.Addr, db.Database)
	ctx := context.Background()
	p := startPulse(t, nil, "dev", "--demo", "--demo-visits", "300", "--clickhouse", dbURL, "--batch-interval", "200ms")
	p.waitReady(t)
	waitFor(t, p, 4*time.Minute, func() string {
		if out := p.stdout.String(); strings.Contains(out, `msg="demo history failed`) {
			t.Fatalf("the demo history failed:\n%s", out)
		} else if !strings.Contains(out, `msg="demo history written"`) {
			return "the demo history is not written"
		}
		return ""
	})
	p.postEvents(t, 5)
	creds := demoCredentials.FindStringSubmatch(p.stdout.String())
	if creds == nil {
		t.Fatalf("no demo login in the log:\n%s", p.stdout)
	}
	// SIGTERM: the batcher writes what it holds, then the usage counters.
	p.stop(t, syscall.SIGTERM)

	// The same data served without demo traffic: nothing changes any more.
	p = startPulse(t, nil, "serve", "--clickhouse", dbURL, "--data", p.dataDir)
	p.waitReady(t)
	call := func(method, path, token, body string, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, p.base+"/api/v1"+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, raw)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	var login struct{ Token string }
	call("POST", "/login", "", `{"email":"`+creds[1]+`","password":"`+creds[2]+`"}`, &login)
	var orgs []struct{ ID string }
	call("GET", "/orgs", login.Token, "", &orgs)
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
	call("GET", "/orgs/"+orgs[0].ID+"/usage?from="+today.AddDate(0, 0, -40).Format(time.DateOnly)+"&to="+today.Format(time.DateOnly), login.Token, "", &usage)

	stored := map[string]uint64{}
	rows, err := db.Query(ctx, "SELECT toString(toDate(ts)) AS d, uniqExact(event_id) FROM events WHERE tenant_id = toUUID(?) GROUP BY d ORDER BY d", orgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var storedTotal, counted uint64
	for rows.Next() {
		var d string
		var n uint64
		if err := rows.Scan(&d, &n); err != nil {
			t.Fatal(err)
		}
		stored[d] = n
		storedTotal += n
	}
	rows.Close()
	// Events that passed ingest count on the day they were received, which
	// can be the day after their time near midnight; days before yesterday
	// hold only the history, which counts on its own day.
	settled := today.AddDate(0, 0, -1).Format(time.DateOnly)
	for _, d := range usage.Days {
		counted += d.Events
		if day := d.Day.Format(time.DateOnly); day < settled && d.Events != stored[day] {
			t.Errorf("%s: usage says %d events, ClickHouse holds %d", day, d.Events, stored[day])
		}
	}
	if counted != storedTotal || storedTotal < 1000 {
		t.Fatalf("usage counts %d events, ClickHouse holds %d for the org", counted, storedTotal)
	}
}
