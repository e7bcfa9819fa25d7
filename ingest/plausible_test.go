package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

var plausibleBrowser = map[string]string{"Content-Type": "text/plain", "Origin": "https://shop.example",
	"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}

// TestPlausibleEventsAreStoredAsSent posts the bodies Plausible's tracker and
// its Events API documentation send, and compares each stored row with them.
func TestPlausibleEventsAreStoredAsSent(t *testing.T) {
	e := newFormatsEnv(t)
	many := map[string]string{}
	var manyProps []string
	for i := range MaxPlausibleProps - 1 {
		many[fmt.Sprintf("k%02d", i)] = "v"
		manyProps = append(manyProps, fmt.Sprintf("k%02d=v", i))
	}
	longKey, longValue := strings.Repeat("k", MaxPlausiblePropKeyBytes), strings.Repeat("v", MaxPlausiblePropValueBytes)
	many[longKey] = longValue
	manyProps = append(manyProps, longKey+"="+longValue)
	manyJSON, _ := json.Marshal(map[string]any{"n": "Many", "u": "https://shop.example/many", "d": "shop.example", "p": many})
	cases := []struct {
		body string
		want storedRow
	}{
		{`{"n":"pageview","u":"https://shop.example/docs?ref=x","d":"shop.example","r":"https://news.ycombinator.com/","p":{"author":"ann","n":3,"flag":true,"empty":"","gone":null},"v":36}`,
			storedRow{Type: "page", Name: "pageview", Host: "shop.example", Path: "/docs", Query: "ref=x", Referrer: "https://news.ycombinator.com/",
				Context: `{"v":36}`, Props: "author=ann&empty=&flag=true&n=3"}},
		{`{"name":"Purchase","url":"https://shop.example/thanks","domain":"other.example, shop.example","props":"{\"plan\":\"pro\"}","revenue":{"currency":"USD","amount":"19.99"},"interactive":false}`,
			storedRow{Type: "track", Name: "Purchase", Host: "shop.example", Path: "/thanks", NonInteractive: 1, Props: "plan=pro&revenue_amount=19.99&revenue_currency=USD"}},
		{`{"n":"Buy","u":"https://shop.example/buy","d":"shop.example","$":{"amount":15.50,"currency":"EUR"},"i":true}`,
			storedRow{Type: "track", Name: "Buy", Host: "shop.example", Path: "/buy", Props: "revenue_amount=15.50&revenue_currency=EUR"}},
		// Engagement: the shape of our tracker's engagement event, props ms and scroll.
		{`{"n":"engagement","u":"https://shop.example/docs","d":"shop.example","p":{"author":"ann"},"sd":57,"e":12345,"v":36}`,
			storedRow{Type: "track", Name: "engagement", Host: "shop.example", Path: "/docs", Context: `{"v":36}`, Props: "author=ann&ms=12345&scroll=57"}},
		{`{"n":"engagement","u":"https://shop.example/long","d":"shop.example","sd":130,"e":"800"}`,
			storedRow{Type: "track", Name: "engagement", Host: "shop.example", Path: "/long", Props: "ms=800&scroll=100"}},
		{`{"n":"engagement","u":"https://shop.example/quick","d":"shop.example","e":0}`,
			storedRow{Type: "track", Name: "engagement", Host: "shop.example", Path: "/quick", Props: "ms=0"}},
		// Hash-based routing keeps the fragment in the path.
		{`{"n":"pageview","u":"https://shop.example/app#/settings/profile","d":"shop.example","h":1}`,
			storedRow{Type: "page", Name: "pageview", Host: "shop.example", Path: "/app#/settings/profile"}},
		{`{"n":"pageview","u":"https://shop.example/plain#top","d":"shop.example"}`,
			storedRow{Type: "page", Name: "pageview", Host: "shop.example", Path: "/plain"}},
		// Integer names (404 tracking); the domain from the URL when none is given.
		{`{"n":404,"u":"https://www.shop.example/missing"}`,
			storedRow{Type: "track", Name: "404", Host: "www.shop.example", Path: "/missing"}},
		{string(manyJSON), storedRow{Type: "track", Name: "Many", Host: "shop.example", Path: "/many", Props: strings.Join(manyProps, "&")}},
	}
	for _, tt := range cases {
		if status, body, _ := e.do(t, "POST", "/api/event", tt.body, plausibleBrowser); status != 202 || body != "ok" {
			t.Fatalf("%s = %d %q", tt.body, status, body)
		}
	}
	got := map[string]storedRow{}
	for _, r := range e.stored(t) {
		r.ID, r.TS, r.Received = "", time.Time{}, time.Time{}
		got[r.Name+" "+r.Path] = r
	}
	if len(got) != len(cases) {
		t.Fatalf("stored %d events, want %d: %v", len(got), len(cases), got)
	}
	for _, tt := range cases {
		if g := got[tt.want.Name+" "+tt.want.Path]; g != tt.want {
			t.Errorf("%s\nstored %+v\nwant   %+v", tt.body, g, tt.want)
		}
	}
}

// TestPlausibleRefusesLoudly: what Pulse will not store as sent is answered
// 400 with Plausible's {"errors": {field: [reason]}}, which the tracker hands
// its callback, and nothing is stored.
func TestPlausibleRefusesLoudly(t *testing.T) {
	e := newFormatsEnv(t)
	props := func(n int) string {
		p := map[string]string{}
		for i := range n {
			p[fmt.Sprintf("k%02d", i)] = "v"
		}
		b, _ := json.Marshal(p)
		return string(b)
	}
	ev := func(extra string) string {
		return `{"n":"Signup","u":"https://shop.example/","d":"shop.example"` + extra + `}`
	}
	for _, tt := range []struct{ name, body, field, want string }{
		{"not JSON", `n=pageview`, "request", "Unable to parse"},
		{"no name", `{"u":"https://shop.example/","d":"shop.example"}`, "name", "can't be blank"},
		{"an object as name", `{"n":{},"u":"https://shop.example/","d":"shop.example"}`, "name", "must be a string"},
		{"no url", `{"n":"pageview","d":"shop.example"}`, "url", "is required"},
		{"not an http URL", `{"n":"pageview","u":"app://shop/","d":"shop.example"}`, "url", "absolute http(s) URL"},
		{"unknown domain", `{"n":"pageview","u":"https://x.example/","d":"x.example"}`, "domain", "not a site of this Pulse"},
		{"too many props", ev(`,"p":` + props(MaxPlausibleProps+1)), "props", "31 properties, more than the limit of 30"},
		{"a long prop name", ev(`,"p":{"` + strings.Repeat("k", MaxPlausiblePropKeyBytes+1) + `":"v"}`), "props", "must be 1 to 300 bytes"},
		{"a long prop value", ev(`,"p":{"k":"` + strings.Repeat("v", MaxPlausiblePropValueBytes+1) + `"}`), "props", "2001 bytes, more than the limit of 2000"},
		{"an object prop", ev(`,"p":{"k":{"a":1}}`), "props", "no objects or arrays"},
		{"props not an object", ev(`,"p":[1]`), "props", "must be an object"},
		{"a lower-case currency", ev(`,"$":{"amount":1,"currency":"usd"}`), "revenue", "not an ISO 4217 code"},
		{"an unknown currency", ev(`,"revenue":{"amount":1,"currency":"ABC"}`), "revenue", "not an ISO 4217 code"},
		{"an amount that is no number", ev(`,"$":{"amount":"lots","currency":"USD"}`), "revenue", "decimal number"},
		{"revenue without currency", ev(`,"$":{"amount":1}`), "revenue", "not an ISO 4217 code"},
		{"a revenue_amount prop beside revenue", ev(`,"p":{"revenue_amount":"2"},"$":{"amount":1,"currency":"USD"}`), "props", "revenue_amount"},
		{"engagement without sd or e", `{"n":"engagement","u":"https://shop.example/","d":"shop.example"}`, "name", "at least one of 'sd' or 'e'"},
		{"a negative scroll depth", `{"n":"engagement","u":"https://shop.example/","d":"shop.example","sd":-1}`, "sd", "0 or more"},
		{"a fractional scroll depth", `{"n":"engagement","u":"https://shop.example/","d":"shop.example","sd":2.5}`, "sd", "integer"},
		{"engaged for 30 days", `{"n":"engagement","u":"https://shop.example/","d":"shop.example","e":2592000000}`, "e", "milliseconds"},
		{"a prop named scroll on engagement", `{"n":"engagement","u":"https://shop.example/","d":"shop.example","sd":5,"p":{"scroll":"x"}}`, "props", "scroll"},
		{"hash mode not a number", ev(`,"h":"yes"`), "h", "integer"},
		{"interactive not a boolean", ev(`,"i":"no"`), "interactive", "true or false"},
		{"a referrer that is no URL", ev(`,"r":"android-app://mail"`), "referrer", "absolute http(s) URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := e.do(t, "POST", "/api/event", tt.body, plausibleBrowser)
			var ans struct{ Errors map[string][]string }
			if err := json.Unmarshal([]byte(body), &ans); err != nil || status != 400 || len(ans.Errors[tt.field]) != 1 || !strings.Contains(ans.Errors[tt.field][0], tt.want) {
				t.Fatalf("= %d %s, want 400 {errors: {%s: [… %q …]}}", status, body, tt.field, tt.want)
			}
		})
	}
	if status, body, _ := e.do(t, "POST", "/api/event", ev(""), map[string]string{"Origin": "https://evil.example"}); status != 403 || !strings.Contains(body, "not an allowed origin") {
		t.Fatalf("from a foreign origin = %d %s", status, body)
	}
	// Global Privacy Control: nothing stored, and the answer says it was dropped, as Plausible's does.
	gpc := map[string]string{"Origin": "https://shop.example", "Sec-GPC": "1"}
	if status, _, header := e.do(t, "POST", "/api/event", ev(""), gpc); status != 202 || header.Get("X-Plausible-Dropped") != "1" {
		t.Fatalf("with GPC = %d, X-Plausible-Dropped %q", status, header.Get("X-Plausible-Dropped"))
	}
	if got := e.stored(t); len(got) != 0 {
		t.Fatalf("stored %v from refused requests", got)
	}
}
