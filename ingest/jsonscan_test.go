package ingest

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/uuid"
)

// jsonSeeds are inputs for the comparisons with encoding/json: shapes of
// frames and events, and the corners where a hand-written decoder could differ.
var jsonSeeds = []string{
	`{"type":"hello","v":1,"sdk":"pulse-js","sdk_version":"1.0.0","resume":"r","identity":"i"}`,
	`{"type":"events","seq":7,"events":[{"id":"6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c","type":"page","url":"https://a.example/x?utm_source=y&utm_medium=e%20m","referrer":"https://www.google.com/","title":"T","props":{"a":1,"b":"x","c":true}}]}`,
	`{"type":"ping","id":{"deep":[1,2,{"x":null}]}}`,
	`{"TYPE":"ping","Id":7}`,
	`{"type":"events","seq":1,"events":[1,"x",null,[],{}],"events":[{"type":"track","name":"n"}]}`,
	`{"type":"events","seq":1.5}`,
	`{"type":"events","seq":"1"}`,
	`{"type":"events","seq":1,"events":{}}`,
	`{"type":"hello","v":1e0}`,
	`{"type":"hello","v":99999999999999999999}`,
	`{"type":5,"seq":"x"}`,
	`{"type":"ping"} x`,
	`{"type":"ping",}`,
	`{"type":"ping" "id":1}`,
	`{"ty\u0070e":"ping","id":"\ud83d\ude00\ud800x\udc00\u00e9\/"}`,
	"{\"type\":\"ping\",\"id\":\"\xff\xfe\xed\xa0\x80\"}",
	"{\"type\":\"ping\",\"id\":\"a\tb\"}",
	`{"tſ":1,"ſeq":2,"type":"events","events":[{"type":"page","url":"https://a.example/","ts":-0,"TS":null}]}`,
	`{"type":"page","url":"https://a.example/","props":{"b":1,"a":2,"b":3},"props":{"c":"x"}}`,
	`{"type":"page","url":"https://a.example/","props":{"a":1},"props":null}`,
	`{"type":"page","url":"https://a.example/","props":[1]}`,
	`{"type":"page","url":"https://a.example/","props":{"":1}}`,
	`{"type":"page","url":"https://a.example/","props":{"x":{"y":1}}}`,
	`{"type":"page","url":"https://a.example/","props":{"x":null}}`,
	`{"type":"page","url":"https://a.example/","props":{"x":-1.5e+3,"y":false}}`,
	`{"type":"track","name":"x","ts":1.5}`,
	`{"type":"track","name":"x","ts":"1"}`,
	`{"type":"track","name":"x","ts":true,"id":5}`,
	`{"type":"track","name":null,"name":"y"}`,
	`null`,
	`"event"`,
	`[{"type":"page"}]`,
	`{"type":"page","url":"HTTPS://A.example:8080/a b/%41?x=1#f"}`,
	`{"type":"page","url":"https://user@a.example/(x)?q=%zz&utm_source=a+b&utm_source=c"}`,
	`{"type":"page","url":"https://[::1]/x","referrer":"ftp://x/"}`,
	`{"type":"page","url":"https://a.example/#%zz"}`,
	`{"type":"page","url":"https://a.example?utm_campaign=x;y&utm_campaign=z"}`,
	` { "type" : "page" , "url" : "https://a.example/p" } `,
	`{"type":"page","url":"https://a.example/","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	`{"type":"page","url":"https://a.example/","x":01}`,
	`{"type":"page","url":"https://a.example/","x":-}`,
	`{"type":"page","url":"https://a.example/","x":tru}`,
	`{"type":"page","url":"https://a.example/","x":"\x"}`,
	`{"type":"page","url":"https://a.example/","x":"\u12"}`,
}

func FuzzDecodeFrameMatchesEncodingJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(strings.Repeat("[", maxNestingDepth-1) + strings.Repeat("]", maxNestingDepth-1)))
	f.Add([]byte(`{"type":"ping","id":` + strings.Repeat("[", maxNestingDepth-1) + strings.Repeat("]", maxNestingDepth-1) + `}`))
	f.Add([]byte(`{"type":"ping","id":` + strings.Repeat("[", maxNestingDepth) + strings.Repeat("]", maxNestingDepth) + `}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := refDecodeFrame(data)
		got, gotErr := decodeFrame(data)
		if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
			t.Fatalf("decodeFrame(%q) error %v, encoding/json: %v", data, gotErr, wantErr)
		}
		if wantErr != nil {
			return
		}
		events := make([]string, len(want.Events))
		for i, e := range want.Events {
			events[i] = string(e)
		}
		wantFrame := clientFrame{Type: want.Type, V: want.V, SDK: want.SDK, SDKVersion: want.SDKVersion, Resume: want.Resume,
			Identity: want.Identity, Seq: want.Seq, Events: events, ID: string(want.ID)}
		if len(got.Events) == 0 {
			got.Events = events[:0]
		}
		if !reflect.DeepEqual(got, wantFrame) {
			t.Fatalf("decodeFrame(%q)\n got %+v\nwant %+v", data, got, wantFrame)
		}
	})
}

func FuzzParseEventMatchesEncodingJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	received := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	site := Site{TenantID: uuid.New(), ID: uuid.New()}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, wantErr := refParseEvent(raw, 2, site, received)
		got, gotErr := parseEvent(raw, 2, site, received)
		if (wantErr == nil) != (gotErr == nil) || wantErr != nil && *wantErr != *gotErr {
			t.Fatalf("parseEvent(%q) error %+v, encoding/json: %+v", raw, gotErr, wantErr)
		}
		if wantErr != nil {
			return
		}
		var w struct{ ID string }
		if json.Unmarshal(raw, &w) == nil && w.ID == "" {
			got.ID = want.ID // both made up a random id
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseEvent(%q)\n got %+v\nwant %+v", raw, got, want)
		}
	})
}

func FuzzSplitHTTPURLMatchesNetURL(f *testing.F) {
	for _, s := range []string{"https://a.example/x?utm_source=y", "http://a.example", "https://a.example?q", "https://a.example/?",
		"HTTPS://a.example/", "https://a.example:80/x", "https://u@a.example/", "https://[::1]/", "https://a.example/a b",
		"https://a.example/%41", "https://a.example/#x", "https://a.example/#%zz", "https:///x", "https://a.example/\x7f",
		"https://a.example/x?\x01", "https://a.example/x#\x01", "https://ä.example/", "https://a.example/(x)", "javascript:x",
		"https://a.example/?utm_source=%zz&utm_source=b&utm_medium=a+b&utm_term=1;2&utm_term=3&utm_content=&utm_content=x&utm%5Fcampaign=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, path, query, err := splitHTTPURL(s)
		u, wantErr := refParseHTTPURL(s)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("splitHTTPURL(%q) error %v, net/url: %v", s, err, wantErr)
		}
		if err != nil {
			return
		}
		if host != u.Hostname() || path != u.EscapedPath() || query != u.RawQuery {
			t.Fatalf("splitHTTPURL(%q) = %q %q %q, net/url: %q %q %q", s, host, path, query, u.Hostname(), u.EscapedPath(), u.RawQuery)
		}
		var e Event
		e.readUTM(query)
		q, _ := url.ParseQuery(query)
		if e.UTMSource != q.Get("utm_source") || e.UTMMedium != q.Get("utm_medium") || e.UTMCampaign != q.Get("utm_campaign") ||
			e.UTMTerm != q.Get("utm_term") || e.UTMContent != q.Get("utm_content") {
			t.Fatalf("readUTM(%q) = %+v, url.ParseQuery: %v", query, e, q)
		}
	})
}

// TestParseEventAllocs holds the decoding of a tracker's pageview to no
// allocation of its own (the property slices come from a shared block).
func TestParseEventAllocs(t *testing.T) {
	raw := `{"id":"6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c","type":"page","url":"https://demo.localhost/p/1?utm_source=news",` +
		`"referrer":"https://www.google.com/","title":"Page","props":{"plan":"pro","n":1}}`
	site := Site{TenantID: uuid.New(), ID: uuid.New()}
	received := time.Now().UTC().Truncate(time.Second)
	events := make([]Event, 1000)
	p := eventParser{block: 4 * len(events)} // as for a frame of 1,000 events
	i := 0
	allocs := testing.AllocsPerRun(len(events)-1, func() {
		if err := p.parse(&events[i], raw, 0, site, received); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs > 0.01 {
		t.Fatalf("parsing a pageview allocates %.2f times, want none of its own", allocs)
	}
	if e := events[1]; e.Hostname != "demo.localhost" || e.UTMSource != "news" || e.ReferrerHost != "www.google.com" || len(e.PropKeys) != 2 {
		t.Fatalf("parsed %+v", e)
	}
}

// TestDetachLiveLeavesTheFrame: the strings the live view may keep no
// longer point into the frame's text (which they would keep in memory).
func TestDetachLiveLeavesTheFrame(t *testing.T) {
	text := `{"type":"events","seq":1,"events":[{"type":"track","name":"signup","url":"https://a.example/join"},` +
		`{"type":"page","url":"https://b.example/x","referrer":"https://news.example/"}]}`
	f, err := decodeFrameText(text, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(text)))
	inFrame := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return len(s) > 0 && p >= start && p < start+uintptr(len(text))
	}
	p := eventParser{block: 16}
	events := make([]Event, len(f.Events))
	for i, raw := range f.Events {
		if err := p.parse(&events[i], raw, i, Site{}, time.Now()); err != nil {
			t.Fatal(err)
		}
		events[i].Source = events[i].ReferrerHost // as the enricher may set it
	}
	if !inFrame(events[0].Name) || !inFrame(events[1].Pathname) {
		t.Fatal("the decoder copied strings it should have taken from the frame")
	}
	detachLive(events)
	for _, e := range events {
		if inFrame(e.Name) || inFrame(e.Pathname) || inFrame(e.Source) {
			t.Fatalf("after detachLive, %+v still points into the frame", e)
		}
	}
	if events[0].Name != "signup" || events[0].Pathname != "/join" || events[1].Name != "pageview" || events[1].Pathname != "/x" || events[1].Source != "news.example" {
		t.Fatalf("detachLive changed values: %+v", events)
	}
}
