package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// nodeJSON runs a script of testdata with node and decodes the JSON line it
// prints into out, failing the test with its output when it fails.
func nodeJSON(t *testing.T, out any, script string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", script))
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s%s", script, err, stdout.Bytes(), stderr.Bytes())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("node %s printed %q (%v); stderr:\n%s", script, stdout.Bytes(), err, stderr.Bytes())
	}
}

// storedRow is every column the foreign formats fill, as stored.
type storedRow struct {
	Type, Name, Host, Path, Query, Title, Referrer string
	UTM                                            [5]string
	User, Group, Previous, Context                 string
	NonInteractive                                 uint8
	Browser, Country                               string
	Props                                          string // k=v&k=v, sorted by name
	TS, Received                                   time.Time
}

// storedRows returns every stored event by id, FINAL. Call it once the
// server has stopped: its final flush wrote everything it accepted.
func storedRows(t *testing.T, db *chdb.DB) map[string]storedRow {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT toString(event_id), type, name, hostname, pathname, query, title, referrer,
		utm_source, utm_medium, utm_campaign, utm_term, utm_content, user_id, group_id, previous_id, context, non_interactive,
		browser, country, arrayStringConcat(arrayMap((k, v) -> concat(k, '=', v), prop_keys, prop_values), '&'), ts, received_at
		FROM events FINAL ORDER BY event_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]storedRow{}
	for rows.Next() {
		var (
			id string
			r  storedRow
		)
		if err := rows.Scan(&id, &r.Type, &r.Name, &r.Host, &r.Path, &r.Query, &r.Title, &r.Referrer,
			&r.UTM[0], &r.UTM[1], &r.UTM[2], &r.UTM[3], &r.UTM[4], &r.User, &r.Group, &r.Previous, &r.Context, &r.NonInteractive,
			&r.Browser, &r.Country, &r.Props, &r.TS, &r.Received); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	return out
}

// segmentServer runs `pulse dev` with the geography database and returns it
// with its ClickHouse and an ingest key of the demo organization, made with
// the CLI, that the running server already accepts.
func segmentServer(t *testing.T) (*process, *chdb.DB, string) {
	t.Helper()
	db := chtest.Open(t)
	dbURL := db.URL()
	data := t.TempDir()
	geo, err := filepath.Abs(filepath.Join("..", "..", "node_modules", "@ip-location-db", "geo-whois-asn-country-mmdb", "geo-whois-asn-country.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	p := startPulse(t, nil, "dev", "--clickhouse", dbURL, "--data", data, "--batch-interval", "50ms", "--geoip-db", geo)
	p.waitReady(t)
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
	return p, db, key.Secret
}

// segmentReport is what segment-client.mjs prints.
type segmentReport struct {
	Sent []struct {
		Batch  []map[string]json.RawMessage
		SentAt string
	}
	Errors []struct{ Code, Reason, MessageID string }
}

// writeCalls writes the calls for segment-client.mjs to a file and returns its path.
func writeCalls(t *testing.T, calls []map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(calls)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "calls.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSegmentNodeLibraryCallsAreStoredAsSent drives Segment's own Node
// library through every call, on a machine whose clock runs two hours slow,
// and compares each stored row, field by field, with the message the library
// sent (what docs/ingest-formats.md says Pulse does with each field).
func TestSegmentNodeLibraryCallsAreStoredAsSent(t *testing.T) {
	p, db, key := segmentServer(t)
	const skew = -2 * time.Hour
	firefox := "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	props := map[string]any{"revenue": 19.5, "currency": "EUR", "items": []any{map[string]any{"sku": "a", "qty": 2}}, "coupon": nil,
		"note": strings.Repeat("é", 1500)}
	for i := range 35 {
		props[fmt.Sprintf("p%02d", i)] = i
	}
	calls := []map[string]any{
		{"method": "track", "args": map[string]any{"userId": "u-42", "event": "Order Completed", "properties": props,
			"context": map[string]any{"ip": "81.2.69.142", "userAgent": firefox, "locale": "en-GB", "groupId": "acct-9",
				"page":     map[string]any{"url": "https://demo.localhost/checkout?utm_source=url&utm_term=shoes", "title": strings.Repeat("t", 600)},
				"campaign": map[string]any{"name": "spring", "source": "newsletter", "medium": "email"}}}},
		// Ten minutes before the call, by the slow clock.
		{"method": "track", "args": map[string]any{"anonymousId": "anon-1", "event": "Imported", "timestamp": time.Now().Add(skew - 10*time.Minute).UTC().Format(time.RFC3339Nano),
			"context": map[string]any{"page": map[string]any{"url": "https://demo.localhost/import"}}}},
		{"method": "page", "args": map[string]any{"anonymousId": "anon-1", "name": "Pricing", "category": "Docs",
			"properties": map[string]any{"url": "https://demo.localhost/pricing", "title": "Pricing", "referrer": "https://news.example/"}}},
		{"method": "screen", "args": map[string]any{"userId": "u-42", "name": "Home", "category": "Main", "properties": map[string]any{"tab": 2}}},
		{"method": "identify", "args": map[string]any{"userId": "u-42", "traits": map[string]any{"plan": "pro", "address": map[string]any{"city": "Berlin"}}}},
		{"method": "group", "args": map[string]any{"userId": "u-42", "groupId": "acct-7", "traits": map[string]any{"name": "Initech", "employees": 420}}},
		{"method": "alias", "args": map[string]any{"userId": "u-42", "previousId": "anon-1"}},
	}
	var rep segmentReport
	nodeJSON(t, &rep, "segment-client.mjs", "PULSE_URL="+p.base, "WRITE_KEY="+key, "CALLS="+writeCalls(t, calls),
		"CLOCK_SKEW_MS="+fmt.Sprint(skew.Milliseconds()))
	if len(rep.Errors) != 0 {
		t.Fatalf("the library reported errors: %+v", rep.Errors)
	}
	p.stop(t, syscall.SIGTERM) // the final flush writes every accepted event
	got := storedRows(t, db)

	n := 0
	for _, req := range rep.Sent {
		for _, m := range req.Batch {
			n++
			var messageID, typ string
			_ = json.Unmarshal(m["messageId"], &messageID)
			_ = json.Unmarshal(m["type"], &typ)
			row, ok := got[ingest.SegmentEventID(messageID).String()]
			if !ok {
				t.Errorf("%s %s: not stored", typ, messageID)
				continue
			}
			want := expectedSegmentRow(t, m)
			if !jsonEqual(row.Context, want.Context) {
				t.Errorf("%s: context stored %s, sent %s", typ, row.Context, want.Context)
			}
			// ts is receivedAt - (sentAt - timestamp), to the second.
			sentAt, errS := time.Parse(time.RFC3339Nano, req.SentAt)
			var ts string
			_ = json.Unmarshal(m["timestamp"], &ts)
			stamp, errT := time.Parse(time.RFC3339Nano, ts)
			if errS != nil || errT != nil {
				t.Fatalf("sentAt %q timestamp %q: %v %v", req.SentAt, ts, errS, errT)
			}
			if d := row.Received.Add(-sentAt.Sub(stamp)).Sub(row.TS); d < -time.Second || d > time.Second {
				t.Errorf("%s: ts %s, received %s, sentAt %s, timestamp %s: off by %s", typ, row.TS, row.Received, sentAt, stamp, d)
			}
			row.Context, want.Context, row.TS, row.Received = "", "", time.Time{}, time.Time{}
			if row != want {
				t.Errorf("%s %s\nstored %+v\nsent   %+v", typ, messageID, row, want)
			}
		}
	}
	if n != len(calls) || len(got) != len(calls) {
		t.Fatalf("the library sent %d messages and %d are stored, want %d", n, len(got), len(calls))
	}
	// The slow clock is corrected: the imported event happened ten minutes
	// ago, the others just now.
	for id, r := range got {
		want := time.Minute
		if r.Name == "Imported" {
			want = 10 * time.Minute
		}
		if age := time.Since(r.TS); age < want-time.Minute || age > want+time.Minute {
			t.Errorf("%s %s happened %s ago by its stored ts, want about %s", r.Type, id, age.Round(time.Second), want)
		}
	}
	// Enrichment from context.ip and context.userAgent.
	for _, r := range got {
		if r.Name == "Order Completed" && (r.Browser != "Firefox" || r.Country != "GB") {
			t.Errorf("track enriched as %q from %q, want Firefox from GB", r.Browser, r.Country)
		}
	}
}

// expectedSegmentRow is what docs/ingest-formats.md says a Segment message is stored as.
func expectedSegmentRow(t *testing.T, m map[string]json.RawMessage) storedRow {
	t.Helper()
	str := func(raw json.RawMessage) string {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	obj := func(raw json.RawMessage) map[string]json.RawMessage {
		var o map[string]json.RawMessage
		_ = json.Unmarshal(raw, &o)
		return o
	}
	typ := str(m["type"])
	ctx := obj(m["context"])
	page, campaign := obj(ctx["page"]), obj(ctx["campaign"])
	r := storedRow{Type: typ, User: str(m["userId"]), Group: first(str(m["groupId"]), str(ctx["groupId"])), Previous: str(m["previousId"])}
	props := obj(m["properties"])
	pageURL, title, referrer := str(page["url"]), str(page["title"]), str(page["referrer"])
	switch typ {
	case "track":
		r.Name = str(m["event"])
	case "page", "screen":
		r.Name = str(m["name"])
		pageURL, title, referrer = first(str(props["url"]), pageURL), first(str(props["title"]), title), first(str(props["referrer"]), referrer)
	case "identify", "group":
		props = obj(m["traits"])
	case "alias":
		props = nil
	}
	if typ == "page" && r.Name == "" {
		r.Name = "pageview"
	}
	if c := str(m["category"]); c != "" {
		if props == nil {
			props = map[string]json.RawMessage{}
		}
		if _, ok := props["category"]; !ok {
			props["category"] = m["category"]
		}
	}
	r.Title, r.Referrer = title, referrer
	var q url.Values
	if pageURL != "" {
		u, err := url.Parse(pageURL)
		if err != nil {
			t.Fatal(err)
		}
		r.Host, r.Path, r.Query, q = u.Hostname(), u.EscapedPath(), u.RawQuery, u.Query()
		if r.Path == "" {
			r.Path = "/"
		}
	}
	for i, k := range []string{"source", "medium", "name", "term", "content"} {
		r.UTM[i] = first(str(campaign[k]), q.Get("utm_"+strings.Replace(k, "name", "campaign", 1)))
	}
	var kv []string
	for k, v := range props {
		switch v[0] {
		case '"':
			kv = append(kv, k+"="+str(v))
		case '{', '[', 'n':
			var b bytes.Buffer
			_ = json.Compact(&b, v)
			kv = append(kv, k+"="+b.String())
		default:
			kv = append(kv, k+"="+string(v))
		}
	}
	sort.Strings(kv)
	r.Props = strings.Join(kv, "&")
	delete(ctx, "ip")
	delete(ctx, "userAgent")
	if len(ctx) > 0 {
		b, _ := json.Marshal(ctx)
		r.Context = string(b)
	}
	if ua := str(obj(m["context"])["userAgent"]); strings.Contains(ua, "Firefox") {
		r.Browser = "Firefox"
	}
	if str(obj(m["context"])["ip"]) == "81.2.69.142" {
		r.Country = "GB"
	}
	return r
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// jsonEqual reports whether a and b are the same JSON value ("" is none).
func jsonEqual(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// TestSegmentNodeLibraryReportsRefusals: what Pulse refuses, Segment's
// library reports as an error of that message (its "error" event), with the
// reason; what it accepts is stored, and only that.
func TestSegmentNodeLibraryReportsRefusals(t *testing.T) {
	p, db, key := segmentServer(t)
	page := map[string]any{"page": map[string]any{"url": "https://demo.localhost/"}}
	calls := []map[string]any{
		// 40 KB of one letter: the library's own size estimate lets it through.
		{"method": "track", "args": map[string]any{"userId": "u-1", "event": "Too big", "messageId": "m-big", "properties": map[string]any{"blob": strings.Repeat("x", 40<<10)}}},
		{"method": "track", "args": map[string]any{"userId": "u-1", "event": "Too old", "messageId": "m-old", "timestamp": time.Now().Add(-8 * 24 * time.Hour).UTC().Format(time.RFC3339Nano)}},
		{"method": "track", "args": map[string]any{"userId": "u-1", "event": "Bad address", "messageId": "m-ip", "context": map[string]any{"ip": "somewhere"}}},
		{"method": "track", "args": map[string]any{"userId": "u-1", "event": "Fine", "messageId": "m-fine", "context": page}},
	}
	var rep segmentReport
	nodeJSON(t, &rep, "segment-client.mjs", "PULSE_URL="+p.base, "WRITE_KEY="+key, "CALLS="+writeCalls(t, calls), "BATCH=1")
	want := map[string]string{
		"m-big": "[400] Bad Request: nothing stored: message is 4",
		"m-old": "[400] Bad Request: nothing stored: timestamp",
		"m-ip":  "[400] Bad Request: nothing stored: context.ip \"somewhere\" is not an IP address",
	}
	if len(rep.Errors) != len(want) {
		t.Fatalf("the library reported %+v, want an error for each of %v", rep.Errors, want)
	}
	for _, e := range rep.Errors {
		if w, ok := want[e.MessageID]; !ok || e.Code != "delivery_failure" || !strings.Contains(e.Reason, w) {
			t.Errorf("the library reported %+v, want %q", e, w)
		}
	}
	if r := rep.Errors; len(r) > 0 && !strings.Contains(fmt.Sprint(r), "32 KB") || !strings.Contains(fmt.Sprint(r), "last 7 days") {
		t.Errorf("the reasons %+v do not name Segment's 32 KB or Pulse's 7 days", r)
	}

	// A key without the ingest scope, or none at all, is reported too.
	var bad segmentReport
	nodeJSON(t, &bad, "segment-client.mjs", "PULSE_URL="+p.base, "WRITE_KEY=sk_not_a_key", "CALLS="+writeCalls(t, calls[3:]))
	if len(bad.Errors) != 1 || !strings.Contains(bad.Errors[0].Reason, "[401] Unauthorized: the write key must be a Pulse API key") {
		t.Fatalf("with a wrong key the library reported %+v", bad.Errors)
	}

	p.stop(t, syscall.SIGTERM)
	got := storedRows(t, db)
	if len(got) != 1 || got[ingest.SegmentEventID("m-fine").String()].Name != "Fine" {
		t.Fatalf("stored %+v, want only the accepted message", got)
	}
}

// plausibleReport is what plausible-browser.mjs prints.
type plausibleReport struct {
	Events []struct {
		Body   map[string]json.RawMessage
		Status int
		Answer string
	}
	Results []struct {
		Name   string
		Result struct{ Status int }
	}
}

// TestPlausibleTrackerEventsAreStoredAsSent runs Plausible's own tracker in
// Chromium on a page with hash-based routing and custom properties for every
// event: a pageview, a non-interactive custom event with revenue, two events
// Pulse refuses, and, once the route changes, the engagement of the first
// route and the next pageview. Each stored row is compared, field by field,
// with the body the tracker sent; the refused ones reach the tracker's
// callback as 400 and are not stored.
func TestPlausibleTrackerEventsAreStoredAsSent(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("Debian's chromium is required: apt-get install chromium")
	}
	db := chtest.Open(t)
	p := startPulse(t, nil, "dev", "--clickhouse", db.URL(), "--batch-interval", "50ms")
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
	mux.HandleFunc("/app", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>Shop</title><script type="module">
import { init, track } from '/plausible.js'
window.results = []
const report = (name) => (result) => window.results.push({ name, result })
init({ domain: 'demo.localhost', endpoint: '%s/api/event', captureOnLocalhost: true, hashBasedRouting: true,
  customProperties: { lang: 'en' } })
track('Signup', { props: { plan: 'pro', seats: 3 }, revenue: { amount: 19.99, currency: 'EUR' }, interactive: false, callback: report('Signup') })
track('Too big', { props: { k: 'x'.repeat(2001) }, callback: report('Too big') })
track('Bad revenue', { revenue: { amount: 5, currency: 'usd' }, callback: report('Bad revenue') })
</script>`, p.base)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	allowOrigin(t, p, pageOrigin)

	var rep plausibleReport
	nodeJSON(t, &rep, "plausible-browser.mjs", "PAGE_URL="+pageOrigin+"/app#/start", "EVENTS=6")
	p.stop(t, syscall.SIGTERM) // the final flush writes every accepted event

	results := map[string]int{}
	for _, r := range rep.Results {
		results[r.Name] = r.Result.Status
	}
	if want := map[string]int{"Signup": 202, "Too big": 400, "Bad revenue": 400}; !reflect.DeepEqual(results, want) {
		t.Fatalf("the track callbacks received %v, want %v", results, want)
	}
	got := map[string]storedRow{}
	for _, r := range storedRows(t, db) {
		got[r.Name+" "+r.Path] = r
	}
	names := map[string]bool{}
	accepted := 0
	for _, ev := range rep.Events {
		want := expectedPlausibleRow(t, ev.Body)
		names[want.Name] = true
		if want.Name == "Too big" || want.Name == "Bad revenue" {
			if ev.Status != 400 || !strings.Contains(ev.Answer, `"errors"`) {
				t.Errorf("%s answered %d %s, want 400 with the errors", want.Name, ev.Status, ev.Answer)
			}
			continue
		}
		if ev.Status != 202 || ev.Answer != "ok" {
			t.Errorf("%s %s answered %d %q, want 202 ok", want.Name, want.Path, ev.Status, ev.Answer)
			continue
		}
		accepted++
		row, ok := got[want.Name+" "+want.Path]
		delete(got, want.Name+" "+want.Path)
		if !ok {
			t.Errorf("%s %s: not stored (stored %v)", want.Name, want.Path, got)
			continue
		}
		want.Browser, want.Country = row.Browser, row.Country // enrichment, not the body
		row.TS, row.Received = time.Time{}, time.Time{}
		if row != want {
			t.Errorf("%s %s\nstored %+v\nsent   %+v", want.Name, want.Path, row, want)
		}
	}
	for _, n := range []string{"pageview", "Signup", "Too big", "Bad revenue", "engagement"} {
		if !names[n] {
			t.Fatalf("the tracker sent %d events without %q: %+v", len(rep.Events), n, rep.Events)
		}
	}
	if accepted != 4 {
		t.Fatalf("%d events accepted, want the two pageviews, Signup and the engagement", accepted)
	}
	// Beyond what the tracker sent while watched, only the engagement of the
	// last route, which it sends as the page closes, may be stored.
	for k, r := range got {
		if k != "engagement /app#/settings" {
			t.Errorf("stored %s, which the tracker did not send or Pulse refused: %+v", k, r)
		}
	}
}

// expectedPlausibleRow is what docs/ingest-formats.md says a Plausible event
// body is stored as.
func expectedPlausibleRow(t *testing.T, b map[string]json.RawMessage) storedRow {
	t.Helper()
	str := func(raw json.RawMessage) string {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	r := storedRow{Type: "track", Name: str(b["n"]), Referrer: str(b["r"])}
	if r.Name == "pageview" {
		r.Type = "page"
	}
	u, err := url.Parse(str(b["u"]))
	if err != nil {
		t.Fatal(err)
	}
	r.Host, r.Path, r.Query = u.Hostname(), u.EscapedPath(), u.RawQuery
	if string(b["h"]) == "1" && u.Fragment != "" {
		r.Path += "#" + u.EscapedFragment()
	}
	props := map[string]json.RawMessage{}
	_ = json.Unmarshal(b["p"], &props)
	var rev struct {
		Amount   json.RawMessage
		Currency string
	}
	if json.Unmarshal(b["$"], &rev) == nil && rev.Currency != "" {
		props["revenue_amount"], props["revenue_currency"] = rev.Amount, json.RawMessage(strconv.Quote(rev.Currency))
	}
	if r.Name == "engagement" {
		props["ms"] = b["e"]
		var sd int
		_ = json.Unmarshal(b["sd"], &sd)
		props["scroll"] = json.RawMessage(strconv.Itoa(min(sd, 100)))
	}
	var kv []string
	for k, v := range props {
		kv = append(kv, k+"="+strings.Trim(string(v), `"`))
	}
	sort.Strings(kv)
	r.Props = strings.Join(kv, "&")
	if string(b["i"]) == "false" {
		r.NonInteractive = 1
	}
	if v, ok := b["v"]; ok {
		r.Context = `{"v":` + string(v) + `}`
	}
	return r
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
