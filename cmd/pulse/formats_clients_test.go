package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// node runs a script of testdata with node, failing the test with its output.
func node(t *testing.T, script string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", script))
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out)
	}
}

// storedEvents returns "type name path" of every event, FINAL, ordered.
func storedEvents(t *testing.T, db *chdb.DB, want int) []string {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(backgroundWait)
	for {
		rows, err := db.Query(ctx, "SELECT concat(type, ' ', name, ' ', pathname, ' ', user_id, ' ', browser, ' ', country, ' ', toString(is_bot)) FROM events FINAL")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			got = append(got, strings.TrimSpace(s))
		}
		rows.Close()
		sort.Strings(got) // compared as a sorted list
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSegmentNodeLibraryDeliversToPulse(t *testing.T) {
	db := chtest.Open(t)
	dbURL := chdb.URL(db.Addr, db.Database)
	data := t.TempDir()
	geo, err := filepath.Abs(filepath.Join("..", "..", "node_modules", "@ip-location-db", "geo-whois-asn-country-mmdb", "geo-whois-asn-country.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	p := startPulse(t, nil, "dev", "--clickhouse", dbURL, "--data", data, "--batch-interval", "50ms", "--geoip-db", geo)
	p.waitReady(t)

	// An ingest key of the demo organization, made with the CLI.
	env := map[string]string{"PULSE_CLICKHOUSE": dbURL, "PULSE_DATA": data}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "org", "list", "--json"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	var orgs []struct{ ID string }
	if err := json.Unmarshal(out.Bytes(), &orgs); err != nil || len(orgs) != 1 {
		t.Fatalf("orgs = %s (%v)", out.String(), err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"admin", "key", "create", "--org", orgs[0].ID, "--name", "segment", "--scopes", "ingest", "--json"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	var key struct{ Secret string }
	_ = json.Unmarshal(out.Bytes(), &key)
	// The running server learns of the key within its metadata refresh interval.
	deadline := time.Now().Add(backgroundWait)
	for {
		req, _ := http.NewRequest("POST", p.base+"/v1/batch", strings.NewReader(`{"batch":[]}`))
		req.SetBasicAuth(key.Secret, "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still refuses the new key after %s: %d", backgroundWait, resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}

	node(t, "segment-client.mjs", "PULSE_URL="+p.base, "WRITE_KEY="+key.Secret)
	got := storedEvents(t, db, 3)
	want := []string{"identify   u-42   0", "page Pricing /pricing    0", "track Order Completed /checkout u-42 Firefox GB 0"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stored:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	p.stop(t, syscall.SIGTERM)
}

func TestPlausibleBrowserTrackerDeliversToPulse(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("Debian's chromium is required: apt-get install chromium")
	}
	db := chtest.Open(t)
	p := startPulse(t, nil, "dev", "--clickhouse", chdb.URL(db.Addr, db.Database), "--batch-interval", "50ms")
	p.waitReady(t)

	// The page lives on its own origin, which the demo site must allow.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pageOrigin := "http://" + ln.Addr().String()
	tracker, err := os.ReadFile(filepath.Join("..", "..", "node_modules", "@plausible-analytics", "tracker", "plausible.js"))
	if err != nil {
		t.Fatalf("npm ci at the repository root installs the Plausible tracker: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/plausible.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write(tracker)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>Shop</title><script type="module">
import { init, track } from '/plausible.js'
init({ domain: 'demo.localhost', endpoint: '%s/api/event', captureOnLocalhost: true })
track('Signup', { props: { plan: 'pro' } })
</script>`, p.base)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	allowOrigin(t, p, pageOrigin)

	node(t, "plausible-browser.mjs", "PAGE_URL="+pageOrigin+"/")
	// Plausible's tracker may add an "engagement" event when the page closes.
	got := strings.Join(storedEvents(t, db, 2), "\n")
	if !strings.Contains(got, "page pageview /") || !strings.Contains(got, "track Signup /") {
		t.Fatalf("stored %q, want the pageview and the Signup event", got)
	}
	p.stop(t, syscall.SIGTERM)
}

// allowOrigin adds origin to the demo site through the API, as its owner.
func allowOrigin(t *testing.T, p *process, origin string) {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(p.dataDir, demoPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, token string, body any) map[string]any {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, p.base+path, bytes.NewReader(raw))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s = %d %v", method, path, resp.StatusCode, out)
		}
		return out
	}
	login := call("POST", "/api/v1/login", "", map[string]string{"email": demoEmail, "password": strings.TrimSpace(string(pw))})
	token := login["token"].(string)
	me := call("GET", "/api/v1/me", token, nil)
	org := me["memberships"].([]any)[0].(map[string]any)["org_id"].(string)
	req, _ := http.NewRequest("GET", p.base+"/api/v1/orgs/"+org+"/sites", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sites []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&sites)
	resp.Body.Close()
	origins := []any{origin}
	origins = append(origins, sites[0]["allowed_origins"].([]any)...)
	call("PATCH", "/api/v1/sites/"+sites[0]["id"].(string), token, map[string]any{"allowed_origins": origins})
}
