package ingest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestParseEvent(t *testing.T) {
	received := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	site := Site{TenantID: uuid.New(), ID: uuid.New(), PublicKey: "pk_test"}
	ms := func(tm time.Time) string { return strings.TrimSpace(string(mustJSON(tm.UnixMilli()))) }
	tests := []struct {
		name      string
		raw       string
		wantField string // empty: the event is valid
		check     func(t *testing.T, e Event)
	}{
		{
			name: "pageview with campaign and props",
			raw: `{"id":"6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c","type":"page","url":"https://shop.example/pricing?utm_source=news&utm_campaign=nov",
				"referrer":"https://search.example/q?x=1","title":"Pricing","ts":` + ms(received.Add(-time.Minute)) + `,"props":{"plan":"pro","seats":3,"trial":true}}`,
			check: func(t *testing.T, e Event) {
				if e.Name != "pageview" || e.Hostname != "shop.example" || e.Pathname != "/pricing" || e.UTMSource != "news" || e.UTMCampaign != "nov" {
					t.Errorf("url parts wrong: %+v", e)
				}
				if e.ReferrerHost != "search.example" || e.Time != received.Add(-time.Minute) || e.TenantID != site.TenantID {
					t.Errorf("referrer/time/tenant wrong: %+v", e)
				}
				if strings.Join(e.PropKeys, ",") != "plan,seats,trial" || strings.Join(e.PropValues, ",") != "pro,3,true" {
					t.Errorf("props = %v %v", e.PropKeys, e.PropValues)
				}
			},
		},
		{
			name: "future timestamp is clamped to the received time",
			raw:  `{"type":"track","name":"signup","ts":` + ms(received.Add(time.Hour)) + `}`,
			check: func(t *testing.T, e Event) {
				if e.Time != received || e.ID == uuid.Nil {
					t.Errorf("time %v id %v, want the received time and a fresh id", e.Time, e.ID)
				}
			},
		},
		{
			name: "long title is truncated on a rune boundary",
			raw:  `{"type":"page","url":"https://a.example/","title":"` + strings.Repeat("é", MaxTitleBytes) + `"}`,
			check: func(t *testing.T, e Event) {
				if len(e.Title) > MaxTitleBytes || !strings.HasPrefix(strings.Repeat("é", MaxTitleBytes), e.Title) {
					t.Errorf("title is %d bytes or split a rune", len(e.Title))
				}
			},
		},
		{name: "missing type", raw: `{"name":"x"}`, wantField: "type"},
		{name: "unknown type", raw: `{"type":"click"}`, wantField: "type"},
		{name: "track without name", raw: `{"type":"track"}`, wantField: "name"},
		{name: "bad id", raw: `{"id":"42","type":"track","name":"x"}`, wantField: "id"},
		{name: "page without url", raw: `{"type":"page"}`, wantField: "url"},
		{name: "relative url", raw: `{"type":"page","url":"/pricing"}`, wantField: "url"},
		{name: "javascript url", raw: `{"type":"page","url":"javascript:alert(1)"}`, wantField: "url"},
		{name: "bad referrer", raw: `{"type":"page","url":"https://a.example/","referrer":"ftp://x"}`, wantField: "referrer"},
		{name: "ts as a string", raw: `{"type":"track","name":"x","ts":"yesterday"}`, wantField: "ts"},
		{name: "ancient ts", raw: `{"type":"track","name":"x","ts":` + ms(received.Add(-MaxEventAge-time.Hour)) + `}`, wantField: "ts"},
		{name: "nested prop", raw: `{"type":"track","name":"x","props":{"cart":{"items":2}}}`, wantField: "props.cart"},
		{name: "too many props", raw: `{"type":"track","name":"x","props":{` + manyProps(MaxProps+1) + `}}`, wantField: "props"},
		{name: "long name", raw: `{"type":"track","name":"` + strings.Repeat("n", MaxNameBytes+1) + `"}`, wantField: "name"},
		{name: "not an object", raw: `[1,2]`, wantField: "event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := parseEvent(json.RawMessage(tt.raw), 3, site, received)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				tt.check(t, e)
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v, want an error on %s", e, tt.wantField)
			}
			if err.Field != tt.wantField || err.Index != 3 || err.Message == "" {
				t.Fatalf("error = %+v, want field %q at index 3 with a message", err, tt.wantField)
			}
		})
	}
}

func TestDecodeEventsShapes(t *testing.T) {
	for body, want := range map[string]int{`[{"type":"page"},{"type":"page"}]`: 2, ` {"type":"page"} `: 1, `[]`: 0} {
		raws, err := decodeEvents([]byte(body))
		if err != nil || len(raws) != want {
			t.Errorf("decodeEvents(%s) = %d events, %v; want %d", body, len(raws), err, want)
		}
	}
	for _, body := range []string{``, `nope`, `{"type":`, `"page"`, `[1,`} {
		if _, err := decodeEvents([]byte(body)); err == nil {
			t.Errorf("decodeEvents(%q) succeeded, want an error", body)
		}
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(`[{"type":"page","url":"https://a.example/x?utm_source=y","props":{"a":1}}]`))
	f.Add([]byte(`{"id":"6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c","type":"track","name":"n","ts":1}`))
	received := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	site := Site{TenantID: uuid.New(), ID: uuid.New()}
	f.Fuzz(func(t *testing.T, body []byte) {
		raws, err := decodeEvents(body)
		if err != nil {
			return
		}
		for i, raw := range raws {
			e, evErr := parseEvent(raw, i, site, received)
			if evErr != nil {
				if evErr.Field == "" || evErr.Message == "" {
					t.Fatalf("error without field or message: %+v", evErr)
				}
				continue
			}
			if len(e.Name) > MaxNameBytes || len(e.Title) > MaxTitleBytes || len(e.PropKeys) > MaxProps || len(e.PropKeys) != len(e.PropValues) {
				t.Fatalf("accepted an event over a limit: %+v", e)
			}
			if e.Time.After(received.Add(MaxClockSkew)) || e.SiteID != site.ID {
				t.Fatalf("accepted event with time %v site %v", e.Time, e.SiteID)
			}
		}
	})
}

func manyProps(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":1`)
	}
	return b.String()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
