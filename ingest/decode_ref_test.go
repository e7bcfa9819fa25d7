package ingest

// The encoding/json decoders of frames and events that the scanner-based
// ones replaced, kept as the reference they are compared with
// (jsonscan_test.go) and as the decoding of the benchmark's same-run limit.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// wireEvent is one event as a client sends it (docs/protocol.md, "Events").
type wireEvent struct {
	ID       string                     `json:"id"`
	Type     string                     `json:"type"`
	Name     string                     `json:"name"`
	TS       *int64                     `json:"ts"` // milliseconds since the Unix epoch
	URL      string                     `json:"url"`
	Referrer string                     `json:"referrer"`
	Title    string                     `json:"title"`
	Props    map[string]json.RawMessage `json:"props"`
}

// refClientFrame is any frame a client sends; which fields matter depends on Type.
type refClientFrame struct {
	Type string `json:"type"`
	// hello
	V          int    `json:"v"`
	SDK        string `json:"sdk"`
	SDKVersion string `json:"sdk_version"`
	Resume     string `json:"resume"`
	Identity   string `json:"identity"`
	// events
	Seq    int64             `json:"seq"`
	Events []json.RawMessage `json:"events"`
	// ping
	ID json.RawMessage `json:"id"`
}

// decodeFrame parses one client frame. Its errors wrap errFrame and say what
// was wrong in words fit for a close reason (at most 123 bytes).
func refDecodeFrame(data []byte) (refClientFrame, error) {
	var f refClientFrame
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return f, fmt.Errorf("%w: a frame must be a JSON object", errFrame)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return f, fmt.Errorf("%w: field %s must be a %s", errFrame, truncate(typeErr.Field, 32), typeErr.Type)
		}
		return f, fmt.Errorf("%w: a frame must be a JSON object", errFrame)
	}
	switch f.Type {
	case frameHello:
		f.SDK, f.SDKVersion = truncate(f.SDK, MaxSDKFieldBytes), truncate(f.SDKVersion, MaxSDKFieldBytes)
	case frameEvents:
		if f.Seq < 1 {
			return f, fmt.Errorf("%w: events.seq must be an integer of at least 1", errFrame)
		}
	case framePing:
		if len(f.ID) > maxPingIDBytes {
			f.ID = nil
		}
		if !utf8.Valid(f.ID) {
			return f, fmt.Errorf("%w: ping id must be valid UTF-8", errFrame)
		}
	case "":
		return f, fmt.Errorf("%w: a frame needs a type", errFrame)
	default:
		return f, fmt.Errorf("%w: unknown frame type %s", errFrame, strconv.Quote(truncate(f.Type, 32)))
	}
	return f, nil
}

// parseEvent validates one raw event and turns it into a row for site.
func refParseEvent(raw json.RawMessage, index int, site Site, received time.Time) (Event, *EventError) {
	fail := func(field, format string, args ...any) (Event, *EventError) {
		return Event{}, &EventError{Index: index, Field: field, Message: fmt.Sprintf(format, args...)}
	}
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return fail(typeErr.Field, "must be a %s, not a JSON %s", typeErr.Type, typeErr.Value)
		}
		return fail("event", "must be a JSON object")
	}

	e := Event{TenantID: site.TenantID, SiteID: site.ID, ReceivedAt: received, Type: w.Type, Name: w.Name}
	switch {
	case w.ID == "":
		e.ID = uuid.New() // resends of an event without an id cannot be recognised
	default:
		id, err := uuid.Parse(w.ID)
		if err != nil {
			return fail("id", "must be a UUID, got %q", truncate(w.ID, 64))
		}
		e.ID = id
	}

	if !eventTypes[w.Type] {
		if w.Type == "" {
			return fail("type", "is required: one of page, track, identify, screen, group, alias")
		}
		return fail("type", "%q is not one of page, track, identify, screen, group, alias", truncate(w.Type, 32))
	}
	if e.Type == "page" && e.Name == "" {
		e.Name = "pageview"
	}
	if e.Type == "track" && e.Name == "" {
		return fail("name", "is required for track events")
	}
	if len(e.Name) > MaxNameBytes {
		return fail("name", "is %d bytes, more than the limit of %d", len(e.Name), MaxNameBytes)
	}

	e.Time = received
	e.serverTime = w.ID != ""
	if w.TS != nil && *w.TS != 0 {
		ts := time.UnixMilli(*w.TS).UTC()
		switch {
		case ts.After(received.Add(MaxClockSkew)):
			// The client clock runs ahead: keep the server's time.
		case ts.Before(received.Add(-MaxEventAge)):
			return fail("ts", "%s is more than %s old", ts.Format(time.RFC3339), MaxEventAge)
		default:
			e.Time, e.serverTime = ts, false
		}
	}

	if w.URL == "" && e.Type == "page" {
		return fail("url", "is required for page events")
	}
	if w.URL != "" {
		u, err := refParseHTTPURL(w.URL)
		if err != nil {
			return fail("url", "%v", err)
		}
		e.Hostname, e.Pathname, e.Query = u.Hostname(), u.EscapedPath(), u.RawQuery
		if e.Pathname == "" {
			e.Pathname = "/"
		}
		q := u.Query()
		e.UTMSource, e.UTMMedium, e.UTMCampaign = q.Get("utm_source"), q.Get("utm_medium"), q.Get("utm_campaign")
		e.UTMTerm, e.UTMContent = q.Get("utm_term"), q.Get("utm_content")
	}
	if w.Referrer != "" {
		u, err := refParseHTTPURL(w.Referrer)
		if err != nil {
			return fail("referrer", "%v", err)
		}
		e.Referrer, e.ReferrerHost = w.Referrer, u.Hostname()
	}
	e.Title = truncate(w.Title, MaxTitleBytes)

	if len(w.Props) > MaxProps {
		return fail("props", "has %d properties, more than the limit of %d", len(w.Props), MaxProps)
	}
	keys := make([]string, 0, len(w.Props))
	for k := range w.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || len(k) > MaxPropKeyBytes {
			return fail("props", "property name %q must be 1 to %d bytes", truncate(k, MaxPropKeyBytes+8), MaxPropKeyBytes)
		}
		v, ok := refPropValue(w.Props[k])
		if !ok {
			return fail("props."+k, "must be a string, number or boolean")
		}
		e.PropKeys = append(e.PropKeys, k)
		e.PropValues = append(e.PropValues, truncate(v, MaxPropValueBytes))
	}
	return e, nil
}

// parseHTTPURL accepts absolute http and https URLs up to MaxURLBytes.
func refParseHTTPURL(s string) (*url.URL, error) {
	if len(s) > MaxURLBytes {
		return nil, fmt.Errorf("is %d bytes, more than the limit of %d", len(s), MaxURLBytes)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("must be an absolute http(s) URL, got %q", truncate(s, 80))
	}
	return u, nil
}

// propValue renders a JSON scalar as a string.
func refPropValue(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case 't', 'f':
		b, err := strconv.ParseBool(string(raw))
		return strconv.FormatBool(b), err == nil
	case '{', '[', 'n':
		return "", false
	default:
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", false
		}
		return n.String(), true
	}
}
