package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/auth"
)

// TestSegmentCallsAreStoredAsSent sends one batch of every call type, as
// Segment's Spec describes them, and compares each stored row with what the
// message said.
func TestSegmentCallsAreStoredAsSent(t *testing.T) {
	e := newFormatsEnv(t)
	iso := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	now := time.Now()
	// The sender's clock is two hours behind: its timestamps and sentAt say so.
	clientNow := now.Add(-2 * time.Hour)
	many := map[string]any{}
	for i := range 40 {
		many[fmt.Sprintf("p%02d", i)] = i
	}
	long := strings.Repeat("é", 2500) // 5,000 bytes
	many["long"] = long
	many["items"] = []any{map[string]any{"sku": "a", "qty": 2}}
	many["coupon"] = nil
	many["big"] = json.RawMessage(`12345678901234567890`)
	many["price"] = json.RawMessage(`19.50`)
	title := strings.Repeat("t", 700)
	batch := map[string]any{
		"sentAt":  iso(clientNow),
		"context": map[string]any{"library": map[string]any{"name": "analytics-go", "version": "3.3.0"}, "locale": "en-GB"},
		"batch": []any{
			map[string]any{"type": "track", "messageId": "m-track", "userId": "u-42", "anonymousId": "anon-1", "event": "Order Completed",
				"timestamp": iso(clientNow.Add(-30 * time.Second)), "properties": many,
				"context": map[string]any{"ip": "81.2.69.142", "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
					"page":     map[string]any{"url": "https://shop.example/checkout?utm_source=url&utm_term=shoes", "title": title},
					"campaign": map[string]any{"name": "spring", "source": "newsletter", "medium": "email"}, "groupId": "acct-9"}},
			map[string]any{"type": "page", "messageId": "6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c", "anonymousId": "anon-1", "name": "Pricing", "category": "Docs",
				"properties": map[string]any{"url": "https://www.shop.example/pricing", "title": "Pricing – Shop", "path": "/pricing",
					"referrer": "https://news.example/", "category": "Docs"}},
			map[string]any{"type": "screen", "messageId": "m-screen", "userId": "u-42", "name": "Home", "category": "Main", "properties": map[string]any{"tab": 2}},
			map[string]any{"type": "identify", "messageId": "m-identify", "userId": "u-42", "traits": map[string]any{"plan": "pro", "address": map[string]any{"city": "Berlin"}}},
			map[string]any{"type": "group", "messageId": "m-group", "userId": "u-42", "groupId": "acct-7", "traits": map[string]any{"name": "Initech", "employees": 420}},
			map[string]any{"type": "alias", "messageId": "m-alias", "userId": "u-42", "previousId": "anon-1"},
		},
	}
	raw, _ := json.Marshal(batch)
	status, body, _ := e.do(t, "POST", "/v1/batch", string(raw), basic(e.ingestKey))
	if status != 200 || !strings.Contains(body, `"accepted":6`) {
		t.Fatalf("/v1/batch = %d %s", status, body)
	}
	// A retried batch is stored once: message ids map to the same event ids.
	if status, body, _ := e.do(t, "POST", "/v1/batch", string(raw), basic(e.ingestKey)); status != 200 {
		t.Fatalf("retry = %d %s", status, body)
	}

	// The single-message endpoints imply their type.
	if status, body, _ := e.do(t, "POST", "/v1/group", `{"userId":"u-1","groupId":"g-1","messageId":"m-single","traits":{"plan":"team"}}`, basic(e.ingestKey)); status != 200 {
		t.Fatalf("/v1/group = %d %s", status, body)
	}

	id := func(messageID string) string { return SegmentEventID(messageID).String() }
	var trackProps []string
	for i := range 40 {
		trackProps = append(trackProps, fmt.Sprintf("p%02d=%d", i, i))
	}
	trackProps = append([]string{"big=12345678901234567890", "coupon=null", `items=[{"qty":2,"sku":"a"}]`, "long=" + long}, trackProps...)
	trackProps = append(trackProps, "price=19.50")
	batchCtx := `"library":{"name":"analytics-go","version":"3.3.0"},"locale":"en-GB"`
	want := map[string]storedRow{
		id("m-track"): {Type: "track", Name: "Order Completed", Host: "shop.example", Path: "/checkout", Query: "utm_source=url&utm_term=shoes", Title: title,
			UTM: [5]string{"newsletter", "email", "spring", "shoes", ""}, User: "u-42", Group: "acct-9",
			Context: `{"campaign":{"medium":"email","name":"spring","source":"newsletter"},"groupId":"acct-9",` + batchCtx +
				`,"page":{"title":"` + title + `","url":"https://shop.example/checkout?utm_source=url&utm_term=shoes"}}`,
			Props: strings.Join(trackProps, "&")},
		id("6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c"): {Type: "page", Name: "Pricing", Host: "www.shop.example", Path: "/pricing", Title: "Pricing – Shop",
			Referrer: "https://news.example/", Context: "{" + batchCtx + "}",
			Props: "category=Docs&path=/pricing&referrer=https://news.example/&title=Pricing – Shop&url=https://www.shop.example/pricing"},
		id("m-screen"):   {Type: "screen", Name: "Home", User: "u-42", Context: "{" + batchCtx + "}", Props: "category=Main&tab=2"},
		id("m-identify"): {Type: "identify", User: "u-42", Context: "{" + batchCtx + "}", Props: `address={"city":"Berlin"}&plan=pro`},
		id("m-group"):    {Type: "group", User: "u-42", Group: "acct-7", Context: "{" + batchCtx + "}", Props: "employees=420&name=Initech"},
		id("m-alias"):    {Type: "alias", User: "u-42", Previous: "anon-1", Context: "{" + batchCtx + "}"},
		id("m-single"):   {Type: "group", User: "u-1", Group: "g-1", Props: "plan=team"},
	}
	got := e.stored(t)
	if len(got) != len(want) {
		t.Fatalf("stored %d events, want %d: %v", len(got), len(want), got)
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Fatalf("no event %s (%s)", id, w.Type)
		}
		w.ID = id
		// Times are compared below, the context as JSON; everything else as it is.
		if !jsonEqual(g.Context, w.Context) {
			t.Errorf("%s stored context %s, want %s", w.Type, g.Context, w.Context)
		}
		cmp := g
		cmp.TS, cmp.Received, w.TS, w.Received, cmp.Context, w.Context = time.Time{}, time.Time{}, time.Time{}, time.Time{}, "", ""
		if cmp != w {
			t.Errorf("%s stored\n%+v\nwant\n%+v", w.Type, cmp, w)
		}
	}
	// Clock skew: receivedAt - (sentAt - timestamp) is 30 s before receipt;
	// a message without a timestamp happened when received.
	if g := got[id("m-track")]; g.Received.Sub(g.TS) < 29*time.Second || g.Received.Sub(g.TS) > 31*time.Second {
		t.Errorf("track ts %s, received %s: want 30 s before receipt", g.TS, g.Received)
	}
	if g := got[id("m-alias")]; !g.TS.Equal(g.Received) {
		t.Errorf("alias ts %s, received %s: want the time received", g.TS, g.Received)
	}
}

// TestSegmentRefusesLoudly: a request with anything Pulse will not store as
// sent is refused whole with 400 (401 for the key), the reason in the body
// and the status line, and nothing of it is stored.
func TestSegmentRefusesLoudly(t *testing.T) {
	e := newFormatsEnv(t)
	now := time.Now().UTC()
	iso := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	ok := `{"type":"track","event":"Fine","userId":"u-1","messageId":"m-ok"}`
	for _, tt := range []struct {
		name, path, body string
		header           map[string]string
		status           int
		want             string
	}{
		{"no key", "/v1/track", `{"event":"x","userId":"u"}`, nil, 401, "ingest scope"},
		{"read-only key", "/v1/track", `{"event":"x","userId":"u"}`, basic(e.readKey), 401, "ingest scope"},
		{"not a batch", "/v1/batch", `[1,2]`, basic(e.ingestKey), 400, "batch"},
		{"not an object", "/v1/track", `"x"`, basic(e.ingestKey), 400, "JSON object"},
		{"body too large", "/v1/batch", `{"batch":[` + ok + strings.Repeat(" ", MaxSegmentBatchBytes) + `]}`, basic(e.ingestKey), 400, "500 KB"},
		{"message too large", "/v1/batch", `{"batch":[` + ok + `,{"type":"track","event":"x","userId":"u","properties":{"p":"` + strings.Repeat("x", MaxSegmentMessageBytes) + `"}}]}`, basic(e.ingestKey), 400, "message 1: message is 32"},
		{"one bad message", "/v1/batch", `{"batch":[` + ok + `,{"type":"track","userId":"u-1","messageId":"m-2"}]}`, basic(e.ingestKey), 400, "message 1: name is required"},
		{"no user", "/v1/track", `{"event":"x"}`, basic(e.ingestKey), 400, "userId is required, or anonymousId"},
		{"a group without groupId", "/v1/group", `{"userId":"u"}`, basic(e.ingestKey), 400, "groupId is required"},
		{"an alias without previousId", "/v1/alias", `{"userId":"u"}`, basic(e.ingestKey), 400, "previousId is required"},
		{"an object as userId", "/v1/track", `{"event":"x","userId":{"id":1}}`, basic(e.ingestKey), 400, "userId must be a string"},
		{"unknown type", "/v1/batch", `{"batch":[{"type":"purchase","userId":"u"}]}`, basic(e.ingestKey), 400, "is not one of page"},
		{"bad timestamp", "/v1/track", `{"event":"x","userId":"u","timestamp":"yesterday"}`, basic(e.ingestKey), 400, "ISO 8601"},
		{"too old", "/v1/track", `{"event":"x","userId":"u","timestamp":"` + iso(now.Add(-8*24*time.Hour)) + `"}`, basic(e.ingestKey), 400, "last 7 days"},
		{"in the future", "/v1/track", `{"event":"x","userId":"u","timestamp":"` + iso(now.Add(time.Hour)) + `"}`, basic(e.ingestKey), 400, "in the future"},
		{"after sentAt", "/v1/batch", `{"sentAt":"` + iso(now) + `","batch":[{"type":"track","event":"x","userId":"u","timestamp":"` + iso(now.Add(time.Hour)) + `"}]}`, basic(e.ingestKey), 400, "later than the message was sent"},
		{"bad context.ip", "/v1/track", `{"event":"x","userId":"u","context":{"ip":"somewhere"}}`, basic(e.ingestKey), 400, "context.ip"},
		{"a property without a name", "/v1/track", `{"event":"x","userId":"u","properties":{"":1}}`, basic(e.ingestKey), 400, "without a name"},
		{"a long name", "/v1/track", `{"event":"` + strings.Repeat("n", MaxNameBytes+1) + `","userId":"u"}`, basic(e.ingestKey), 400, "name is 201 bytes"},
		{"two categories", "/v1/page", `{"userId":"u","category":"A","properties":{"category":"B","url":"https://shop.example/"}}`, basic(e.ingestKey), 400, "category differs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.base+tt.path, strings.NewReader(tt.body))
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var ans struct {
				Success  bool
				Error    string
				Accepted int
			}
			if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || ans.Success || ans.Accepted != 0 || !strings.Contains(ans.Error, tt.want) {
				t.Fatalf("= %d %+v, want %d mentioning %q", resp.StatusCode, ans, tt.status, tt.want)
			}
			// Segment's libraries report the status line.
			if !strings.Contains(resp.Status, tt.want) {
				t.Fatalf("status line %q does not say %q", resp.Status, tt.want)
			}
		})
	}
	if got := e.stored(t); len(got) != 0 {
		t.Fatalf("stored %v from refused requests", got)
	}
}

func TestSegmentNeedsAURLWhenTheOrgHasSeveralSites(t *testing.T) {
	e := newFormatsEnv(t)
	if _, err := e.store.CreateSite(context.Background(), e.org.ID, auth.SiteInput{Domain: "blog.example"}); err != nil {
		t.Fatal(err)
	}
	status, body, _ := e.do(t, "POST", "/v1/track", `{"event":"x","userId":"u","messageId":"m1"}`, basic(e.ingestKey))
	if status != 400 || !strings.Contains(body, "context.page.url") {
		t.Fatalf("= %d %s, want the message refused naming context.page.url", status, body)
	}
	status, body, _ = e.do(t, "POST", "/v1/track", `{"event":"x","userId":"u","messageId":"m2","context":{"page":{"url":"https://blog.example/a"}}}`, basic(e.ingestKey))
	if status != 200 {
		t.Fatalf("with a URL on the second site = %d %s", status, body)
	}
	if err := e.flushBatcher(); err != nil {
		t.Fatal(err)
	}
	var site string
	if err := e.db.QueryRow(context.Background(), "SELECT toString(site_id) FROM events").Scan(&site); err != nil || site == e.site.ID.String() {
		t.Fatalf("stored for site %s (err %v), want the blog's site", site, err)
	}
}

// jsonEqual reports whether a and b are the same JSON value ("" is none).
func jsonEqual(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}
