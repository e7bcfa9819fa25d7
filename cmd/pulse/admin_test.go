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

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestAdminCLIManagesTenantsAgainstARunningServer(t *testing.T) {
	db := chtest.Open(t)
	dbURL := db.URL()
	data := t.TempDir()
	env := map[string]string{"PULSE_CLICKHOUSE": dbURL, "PULSE_DATA": data}
	admin := func(args ...string) map[string]any {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"admin"}, append(args, "--json")...), func(k string) string { return env[k] }, &out); err != nil {
			t.Fatalf("pulse admin %s: %v", strings.Join(args, " "), err)
		}
		var v map[string]any
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			var list []any
			if json.Unmarshal(out.Bytes(), &list) != nil {
				t.Fatalf("pulse admin %s printed %q, not JSON", strings.Join(args, " "), out.String())
			}
			return map[string]any{"list": list}
		}
		return v
	}

	created := admin("user", "create", "--email", "owner@shop.test", "--name", "Owner")
	if pw, _ := created["password"].(string); len(pw) < 16 {
		t.Fatalf("generated password %q", pw)
	}
	org := admin("org", "create", "--name", "Shop", "--owner-email", "owner@shop.test")["id"].(string)
	site := admin("site", "create", "--org", org, "--domain", "shop.test", "--origins", "https://shop.test,https://www.shop.test")
	if !strings.HasPrefix(site["public_key"].(string), "pk_") || len(site["allowed_origins"].([]any)) != 2 {
		t.Fatalf("site = %v", site)
	}
	key := admin("key", "create", "--org", org, "--name", "reports", "--scopes", "read")
	secret := key["secret"].(string)
	keyID := key["api_key"].(map[string]any)["id"].(string)
	if got := admin("member", "list", "--org", org)["list"].([]any); len(got) != 1 {
		t.Fatalf("members = %v", got)
	}
	kid := admin("keys", "rotate")["current_kid"].(string)
	if keys := admin("keys", "list")["list"].([]any); len(keys) != 2 || kid == "" {
		t.Fatalf("after rotate: %d signing keys, kid %q", len(keys), kid)
	}

	// A server on the same ClickHouse and key file sees all of it.
	p := startPulse(t, nil, "serve", "--clickhouse", dbURL, "--data", data)
	p.waitReady(t)
	get := func(path, bearer string) (int, string) {
		req, _ := http.NewRequest("GET", p.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/api/v1/orgs/"+org+"/sites", secret); code != 200 || !strings.Contains(body, "shop.test") {
		t.Fatalf("GET sites with the CLI's key = %d %s", code, body)
	}

	// Revoked through the CLI, the key stops working on the running server
	// within its refresh interval.
	admin("key", "revoke", "--id", keyID)
	deadline := time.Now().Add(backgroundWait)
	for {
		code, _ := get("/api/v1/orgs/"+org+"/sites", secret)
		if code == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still answered %d after %s", code, backgroundWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop(t, syscall.SIGTERM)

	// Mistakes are usage errors that say what was wrong.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"member", "add", "--org", org, "--email", "owner@shop.test", "--role", "boss"}, "role"},
		{[]string{"site", "create", "--org", "nope", "--domain", "x.test"}, `"nope" is not a valid org id`},
		{[]string{"key", "create", "--org", org, "--name", "k", "--scopes", "everything"}, "scope"},
		{[]string{"org", "fly"}, "unknown admin action"},
	} {
		err := run(context.Background(), append([]string{"admin"}, tt.args...), func(k string) string { return env[k] }, io.Discard)
		if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("admin %v = %v, want a usage error about %q", tt.args, err, tt.want)
		}
	}

	// Without --json, a list is a table for people.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "org", "list"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "NAME") || !strings.Contains(out.String(), "Shop") {
		t.Fatalf("org list = %q", out.String())
	}
}
