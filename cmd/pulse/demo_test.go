package main

import (
	"context"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// waitFor polls check until it returns "" or the deadline passes, then fails
// with check's last complaint.
func waitFor(t *testing.T, p *process, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		select {
		case <-p.exited:
			t.Fatalf("pulse exited (%v); stdout:\n%s\nstderr:\n%s", p.waitErr, p.stdout, p.stderr)
		default:
		}
		problem := check()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s; stdout:\n%s", within, problem, p.stdout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

var demoStarting = regexp.MustCompile(`time=(\S+) level=INFO msg="demo traffic starting"`)

func TestDevDemoSendsLiveVisitorsThroughIngestAndBackfillsThirtyDays(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	args := []string{"dev", "--demo", "--demo-visits", "4000", "--clickhouse", db.URL(), "--batch-interval", "200ms"}
	p := startPulse(t, nil, args...)
	p.waitReady(t)
	// The history ends where the live traffic starts: when the demo says it starts.
	var started time.Time
	waitFor(t, p, 30*time.Second, func() string {
		m := demoStarting.FindStringSubmatch(p.stdout.String())
		if m == nil {
			return "the demo did not start"
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			return err.Error()
		}
		started = at.UTC().Truncate(time.Second).Add(time.Second)
		return ""
	})

	// Live events: since the demo started, through ingest (enriched there).
	type liveCounts struct{ events, visitors, sessions, sources, placed uint64 }
	live := func() liveCounts {
		t.Helper()
		var c liveCounts
		err := db.QueryRow(ctx, `SELECT count(), uniqExact(visitor_id), uniqExact(session_id), uniqExact(source), countIf(country != '')
			FROM events WHERE ts >= toDateTime(?)`, uint32(started.Unix())).Scan(&c.events, &c.visitors, &c.sessions, &c.sources, &c.placed)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var first liveCounts
	waitFor(t, p, 60*time.Second, func() string {
		if first = live(); first.events == 0 {
			return "no live demo events in ClickHouse"
		}
		return ""
	})
	waitFor(t, p, 90*time.Second, func() string {
		c := live()
		switch {
		case c.events <= first.events:
			return "the live event count does not rise"
		case c.visitors < 3 || c.sessions < 3 || c.sources < 2:
			return "live events come from too few visitors or sources"
		case c.placed != c.events:
			return "live events without a country: the demo's places did not reach enrichment"
		}
		return ""
	})

	// History: thirty days back from the start, every hour of it.
	waitFor(t, p, 4*time.Minute, func() string {
		if out := p.stdout.String(); strings.Contains(out, `msg="demo history failed`) {
			t.Fatalf("the demo history failed:\n%s", out)
		} else if !strings.Contains(out, `msg="demo history written"`) {
			return "the demo history is not written"
		}
		return ""
	})
	history := func() (n, ids, days, hours uint64, oldest time.Time) {
		t.Helper()
		err := db.QueryRow(ctx, `SELECT count(), uniqExact(event_id), uniqExact(toDate(ts)), uniqExact(toStartOfHour(ts)), min(ts)
			FROM events WHERE ts < toDateTime(?)`, uint32(started.Unix())).Scan(&n, &ids, &days, &hours, &oldest)
		if err != nil {
			t.Fatal(err)
		}
		return n, ids, days, hours, oldest
	}
	n, ids, days, hours, oldest := history()
	t.Logf("%d events of history on %d days; live so far: %+v", n, days, live())
	from := started.Add(-30 * 24 * time.Hour)
	if oldest.Before(from.Add(-2*time.Second)) || oldest.Sub(from) > time.Hour || days < 30 || hours < 30*24-2 || ids != n {
		t.Fatalf("history: %d events (%d ids) on %d days, %d hours, oldest %s; want every hour since %s", n, ids, days, hours, oldest, from)
	}

	// Ctrl-C: the visitors leave before ingest closes its sockets.
	p.stop(t, syscall.SIGINT)
	out := p.stdout.String()
	left, stopped := strings.Index(out, `msg="demo live traffic stopped"`), strings.Index(out, `msg="pulse stopped"`)
	if left < 0 || stopped < left {
		t.Fatalf("want the demo's visitors gone before pulse stops:\n%s", out)
	}
	if strings.Contains(out, "closed by the server") || strings.Contains(out, "could not connect") {
		t.Fatalf("demo visitors were cut off or refused:\n%s", out)
	}

	// A restart adds no history twice: only the hours since the first start.
	p = startPulse(t, nil, append(args, "--data", p.dataDir)...)
	p.waitReady(t)
	waitFor(t, p, 2*time.Minute, func() string {
		if !strings.Contains(p.stdout.String(), `msg="demo history written"`) {
			return "the demo history is not written after the restart"
		}
		return ""
	})
	if n2, ids2, _, _, _ := history(); n2 != n || ids2 != n {
		t.Fatalf("after a restart the history holds %d events (%d ids), before %d", n2, ids2, n)
	}
	var total, distinct uint64
	if err := db.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM events").Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if total != distinct {
		t.Fatalf("%d events but %d ids: the restart wrote events twice", total, distinct)
	}
	p.stop(t, syscall.SIGINT)
}
