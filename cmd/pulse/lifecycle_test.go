package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestMaxRetentionDaysFlag(t *testing.T) {
	var o options
	if err := parseFlags(newFlagSet("serve", &o), nil, func(k string) string {
		return map[string]string{"PULSE_MAX_RETENTION_DAYS": "395"}[k]
	}); err != nil || o.maxRetention != 395 {
		t.Fatalf("PULSE_MAX_RETENTION_DAYS=395: %d, %v", o.maxRetention, err)
	}
	for _, v := range []string{"3651", "-1", "a year"} {
		err := parseFlags(newFlagSet("dev", &options{}), []string{"--max-retention-days", v}, func(string) string { return "" })
		if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), "from 0 (no limit) to 3650") {
			t.Errorf("--max-retention-days %s: %v, want a usage error giving the range", v, err)
		}
	}
}

func TestLifecycleThroughTheCLIAndARunningServer(t *testing.T) {
	db := chtest.Open(t)
	dbURL := db.URL()
	data := t.TempDir()
	env := map[string]string{"PULSE_CLICKHOUSE": dbURL, "PULSE_DATA": data}
	admin := func(args ...string) (map[string]any, error) {
		t.Helper()
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"admin"}, append(args, "--json")...), func(k string) string { return env[k] }, &out)
		var v map[string]any
		if err == nil {
			if jerr := json.Unmarshal(out.Bytes(), &v); jerr != nil {
				t.Fatalf("pulse admin %s printed %q, not a JSON object", strings.Join(args, " "), out.String())
			}
		}
		return v, err
	}
	must := func(args ...string) map[string]any {
		t.Helper()
		v, err := admin(args...)
		if err != nil {
			t.Fatalf("pulse admin %s: %v", strings.Join(args, " "), err)
		}
		return v
	}

	must("user", "create", "--email", "owner@kept.test", "--name", "Owner")
	org := must("org", "create", "--name", "Kept", "--owner-email", "owner@kept.test")["id"].(string)
	site := must("site", "create", "--org", org, "--domain", "kept.test", "--retention-days", "30")
	if site["retention_days"] != 30.0 {
		t.Fatalf("site create --retention-days 30: %v", site)
	}
	siteID := site["id"].(string)
	if got := must("site", "retention", "--site", siteID, "--days", "400"); got["retention_days"] != 400.0 {
		t.Fatalf("site retention --days 400: %v", got)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"site", "retention", "--site", siteID, "--days", "5000"}, "retention_days must be a whole number of days from 1 to 3650"},
		{[]string{"site", "retention", "--site", siteID}, "--days is required"},
		{[]string{"site", "create", "--org", org, "--domain", "bad.test", "--retention-days", "-2"}, "retention_days"},
	} {
		_, err := admin(tt.args...)
		if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("admin %v = %v, want a usage error saying %q", tt.args, err, tt.want)
		}
	}
	key := must("key", "create", "--org", org, "--name", "gdpr", "--scopes", "admin")["secret"].(string)
	reader := must("key", "create", "--org", org, "--name", "reports", "--scopes", "read")["secret"].(string)

	// Two visits of one identified user and one of somebody else.
	ctx := context.Background()
	batch, err := db.PrepareBatch(ctx, "INSERT INTO events (tenant_id, site_id, event_id, ts, received_at, type, pathname, visitor_id, session_id, user_id)")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for i, user := range []string{"u-1", "u-1", "u-2"} {
		if err := batch.Append(uuid.MustParse(org), uuid.MustParse(siteID), uuid.New(), now, now, "page", "/", uint64(10+i), uint64(100+i), user); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	p := startPulse(t, nil, "serve", "--clickhouse", dbURL, "--data", data, "--max-retention-days", "365")
	p.waitReady(t)
	call := func(method, path, bearer, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	sitePath := "/api/v1/sites/" + siteID
	if code, body := call("POST", sitePath+"/erase", reader, `{"user_id": "u-1"}`); code != 403 {
		t.Fatalf("erase with a read key = %d %s, want 403", code, body)
	}
	if code, body := call("GET", sitePath+"/deletions", "", ""); code != 401 {
		t.Fatalf("GET deletions without credentials = %d %s, want 401 (not the web UI's page)", code, body)
	}
	code, body := call("POST", sitePath+"/erase?wait=25s", key, `{"user_id": "u-1"}`)
	if code != 200 || !strings.Contains(body, `"status":"done"`) || !strings.Contains(body, `"events":2`) {
		t.Fatalf("erase u-1 = %d %s, want 200 done with 2 events", code, body)
	}
	var left []string
	rows, err := db.Query(ctx, "SELECT user_id FROM events WHERE tenant_id = toUUID(?) AND site_id = toUUID(?) ORDER BY user_id", org, siteID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		left = append(left, u)
	}
	rows.Close()
	if strings.Join(left, ",") != "u-2" {
		t.Fatalf("events left after erasing u-1: %v, want only u-2's", left)
	}
	if code, body := call("GET", sitePath, key, ""); code != 200 || !strings.Contains(body, `"retention_days":400`) {
		t.Fatalf("GET site = %d %s, want retention_days 400", code, body)
	}
	p.stop(t, syscall.SIGTERM)
}
