package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestEventsAreEnrichedAndStoreNoIP(t *testing.T) {
	db := chtest.Open(t)
	p := startPulse(t, nil, "dev", "--clickhouse", db.URL(), "--batch-interval", "50ms")
	p.waitReady(t)
	const ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
	send := func(body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", p.base+"/v1/events?site="+p.siteKey(t), strings.NewReader(body))
		req.Header.Set("User-Agent", ua)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("POST = %d %s", resp.StatusCode, raw)
		}
	}
	send(`{"type":"page","url":"https://demo.localhost/a?utm_source=newsletter&utm_medium=email"}`)
	send(`{"type":"page","url":"https://demo.localhost/b","referrer":"https://www.google.com/"}`)

	ctx := context.Background()
	var n uint64
	deadline := time.Now().Add(backgroundWait)
	for n < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the 2 accepted events stored after %s", n, backgroundWait)
		}
		time.Sleep(50 * time.Millisecond)
		if err := db.QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Query(ctx, "SELECT pathname, browser, os, device, visitor_id, session_id, source, channel, is_bot FROM events ORDER BY pathname")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var visitors, sessions []uint64
	for rows.Next() {
		var (
			path, browser, os, device, source, channel string
			visitor, session                           uint64
			bot                                        uint8
		)
		if err := rows.Scan(&path, &browser, &os, &device, &visitor, &session, &source, &channel, &bot); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s/%s/%s %s/%s bot=%d", path, browser, os, device, source, channel, bot))
		visitors, sessions = append(visitors, visitor), append(sessions, session)
	}
	rows.Close()
	want := []string{"/a Safari/macOS/desktop Newsletter/Email bot=0", "/b Safari/macOS/desktop Google/Organic Search bot=0"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stored:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if visitors[0] == 0 || visitors[0] != visitors[1] || sessions[0] == 0 || sessions[0] != sessions[1] {
		t.Fatalf("visitor ids %v session ids %v: one visitor, one visit expected", visitors, sessions)
	}

	// No column of any row holds the client's address.
	var withIP uint64
	err = db.QueryRow(ctx, `SELECT count() FROM events WHERE position(concat(hostname, pathname, query, title, referrer, referrer_host,
		utm_source, utm_medium, utm_campaign, utm_term, utm_content, user_id, device, browser, browser_version, os, os_version,
		country, region, city, source, medium, channel, arrayStringConcat(prop_keys), arrayStringConcat(prop_values)), '127.0.0.1') > 0`).Scan(&withIP)
	if err != nil || withIP != 0 {
		t.Fatalf("%d rows hold the client IP (err %v)", withIP, err)
	}
	p.stop(t, syscall.SIGTERM)
}

func TestBotsAreFlaggedOrDropped(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			db := chtest.Open(t)
			args := []string{"dev", "--clickhouse", db.URL(), "--batch-interval", "50ms"}
			if drop {
				args = append(args, "--drop-bots")
			}
			p := startPulse(t, nil, args...)
			p.waitReady(t)
			for _, ua := range []string{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
				"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"} {
				req, _ := http.NewRequest("POST", p.base+"/v1/events?site="+p.siteKey(t), strings.NewReader(`{"type":"page","url":"https://demo.localhost/"}`))
				req.Header.Set("User-Agent", ua)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 202 {
					t.Fatalf("POST = %d", resp.StatusCode)
				}
			}
			p.stop(t, syscall.SIGTERM) // the final flush writes whatever was kept
			var humans, bots uint64
			err := db.QueryRow(context.Background(), "SELECT countIf(is_bot = 0), countIf(is_bot = 1) FROM events").Scan(&humans, &bots)
			if err != nil {
				t.Fatal(err)
			}
			wantBots := uint64(1)
			if drop {
				wantBots = 0
			}
			if humans != 1 || bots != wantBots {
				t.Fatalf("stored %d human and %d bot events, want 1 and %d", humans, bots, wantBots)
			}
		})
	}
}
