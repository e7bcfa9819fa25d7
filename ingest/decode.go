package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// EventError says why one event of a request was rejected.
type EventError struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Message string `json:"error"`
}

func (e *EventError) Error() string {
	return fmt.Sprintf("event %d: %s: %s", e.Index, e.Field, e.Message)
}

// eventTypes are the accepted event types, Segment's vocabulary (eventType
// returns them as constants).
var eventTypes = map[string]bool{"page": true, "track": true, "identify": true, "screen": true, "group": true, "alias": true}

// decodeEvents splits a body holding one event object or an array of them into
// raw events. It fails only when the body as a whole is not such JSON.
func decodeEvents(body []byte) ([]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		if !json.Valid(body) {
			return nil, fmt.Errorf("body is not valid JSON")
		}
		return []json.RawMessage{body}, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fmt.Errorf("body must be a JSON array of events or one event object: %v", err)
	}
	return raws, nil
}

// parseEvent validates one event's JSON and turns it into a row for site.
func parseEvent[T ~string | ~[]byte](raw T, index int, site Site, received time.Time) (Event, *EventError) {
	var (
		p eventParser
		e Event
	)
	if err := p.parse(&e, string(raw), index, site, received); err != nil {
		return Event{}, err
	}
	return e, nil
}

// eventParser decodes events (docs/protocol.md, "Events") into rows. It
// keeps its scratch space from one event to the next, and hands out the
// property slices of the events it decodes from shared blocks, so that an event
// needs no allocation of its own: its strings are substrings of its JSON text
// (which the rows then keep alive), or new strings where the JSON escapes them.
type eventParser struct {
	// block is how many property strings to allocate at once (at least
	// what one event needs); about what the events still to come need.
	block int
	// limits are the limits of the event's format; nil: the protocol's.
	limits *eventLimits
	pairs  []propPair // the event's properties while they are read
	strs   []string   // the free part of the current block of property strings
}

// eventLimits are the limits decoding applies to an event's properties and
// title; a zero limit is no limit. Our protocol truncates long values and
// titles (docs/protocol.md); the foreign formats refuse them, as their
// clients must hear of anything not stored as sent.
type eventLimits struct {
	props      int  // most properties
	keyBytes   int  // longest property name
	valueBytes int  // longest property value
	titleBytes int  // longest title
	truncate   bool // values and titles over their limit are truncated, not refused
}

// protocolLimits are the limits of our own event format (limits.go).
var protocolLimits = eventLimits{props: MaxProps, keyBytes: MaxPropKeyBytes, valueBytes: MaxPropValueBytes,
	titleBytes: MaxTitleBytes, truncate: true}

func (p *eventParser) limit() *eventLimits {
	if p.limits == nil {
		return &protocolLimits
	}
	return p.limits
}

// propPair is one property as read: its name and value (the value's text
// for numbers, its string for strings).
type propPair struct {
	key, value string
	kind       byte
}

// take returns a slice of n strings from the shared block; appending to it
// cannot overwrite another event's strings.
func (p *eventParser) take(n int) []string {
	if len(p.strs) < n {
		p.strs = make([]string, max(p.block, n))
	}
	s := p.strs[:n:n]
	p.strs = p.strs[n:]
	return s
}

// evErr is an event's rejection.
func evErr(index int, field, format string, args ...any) *EventError {
	return &EventError{Index: index, Field: field, Message: fmt.Sprintf(format, args...)}
}

// kindName names a JSON value's kind as encoding/json's type errors do.
func kindName(kind byte) string {
	switch kind {
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	case kindString:
		return "string"
	case kindNumber:
		return "number"
	}
	return "bool"
}

// parse validates the event whose JSON is raw and fills e, a zero Event, with
// its row for site. It accepts and rejects what encoding/json decoding into the
// event's fields, then the checks below, would.
func (p *eventParser) parse(e *Event, raw string, index int, site Site, received time.Time) *EventError {
	var (
		id, typ, name, pageURL, referrer, title string
		ts                                      int64
		hasTS                                   bool
		typeField, typeName, typeValue          string // encoding/json's first type error
	)
	mismatch := func(field, goType, value string) {
		if typeField == "" {
			typeField, typeName, typeValue = field, goType, value
		}
	}
	str := func(dst *string, field string, kind byte, s string) {
		switch kind {
		case kindString:
			*dst = s
		case kindNull:
		default:
			mismatch(field, "string", kindName(kind))
		}
	}
	p.pairs = p.pairs[:0]
	sc := newScanner(raw)
	if sc.peek() == '{' {
		for more := sc.beginObject(); more; more = sc.nextMember() {
			key := sc.memberKey()
			kind, text, s := sc.next(1)
			if !sc.ok {
				break
			}
			switch {
			case fieldIs(key, "id"):
				str(&id, "id", kind, s)
			case fieldIs(key, "type"):
				str(&typ, "type", kind, s)
			case fieldIs(key, "name"):
				str(&name, "name", kind, s)
			case fieldIs(key, "url"):
				str(&pageURL, "url", kind, s)
			case fieldIs(key, "referrer"):
				str(&referrer, "referrer", kind, s)
			case fieldIs(key, "title"):
				str(&title, "title", kind, s)
			case fieldIs(key, "ts"):
				switch kind {
				case kindNumber:
					n, err := strconv.ParseInt(text, 10, 64)
					if err != nil {
						mismatch("ts", "int64", "number "+text)
						break
					}
					ts, hasTS = n, true
				case kindNull:
					hasTS = false
				default:
					mismatch("ts", "int64", kindName(kind))
				}
			case fieldIs(key, "props"):
				switch kind {
				case kindObject:
					p.readProps(text) // a second props object adds to the first
				case kindNull:
					p.pairs = p.pairs[:0]
				default:
					mismatch("props", "map[string]json.RawMessage", kindName(kind))
				}
			}
		}
		if !sc.ok || !sc.end() {
			return evErr(index, "event", "must be a JSON object")
		}
	} else if kind, _, _ := sc.next(0); !sc.ok || !sc.end() || kind != kindNull {
		return evErr(index, "event", "must be a JSON object") // null decodes to no fields at all
	}
	if typeField != "" {
		return evErr(index, typeField, "must be a %s, not a JSON %s", typeName, typeValue)
	}

	e.TenantID, e.SiteID, e.ReceivedAt = site.TenantID, site.ID, received
	switch {
	case id == "":
		e.ID = uuid.New() // resends of an event without an id cannot be recognised
	default:
		u, err := uuid.Parse(id)
		if err != nil {
			return evErr(index, "id", "must be a UUID, got %q", truncate(id, 64))
		}
		e.ID = u
	}

	e.Type = eventType(typ)
	if e.Type == "" {
		if typ == "" {
			return evErr(index, "type", "is required: one of page, track, identify, screen, group, alias")
		}
		return evErr(index, "type", "%q is not one of page, track, identify, screen, group, alias", truncate(typ, 32))
	}
	e.Name = name
	if e.Type == "page" && e.Name == "" {
		e.Name = "pageview"
	}
	if e.Type == "track" && e.Name == "" {
		return evErr(index, "name", "is required for track events")
	}
	if len(e.Name) > MaxNameBytes {
		return evErr(index, "name", "is %d bytes, more than the limit of %d", len(e.Name), MaxNameBytes)
	}

	e.Time = received
	clientTime := false
	if hasTS && ts != 0 {
		t := time.UnixMilli(ts).UTC()
		switch {
		case t.After(received.Add(MaxClockSkew)):
			// The client clock runs ahead: keep the server's time.
		case t.Before(received.Add(-MaxEventAge)):
			return evErr(index, "ts", "%s is more than %s old", t.Format(time.RFC3339), MaxEventAge)
		default:
			e.Time, clientTime = t, true
		}
	}
	e.serverTime = id != "" && !clientTime

	if pageURL == "" && e.Type == "page" {
		return evErr(index, "url", "is required for page events")
	}
	if pageURL != "" {
		host, path, query, err := splitHTTPURL(pageURL)
		if err != nil {
			return evErr(index, "url", "%v", err)
		}
		e.Hostname, e.Pathname, e.Query = host, path, query
		if e.Pathname == "" {
			e.Pathname = "/"
		}
		e.readUTM(query)
	}
	if referrer != "" {
		host, _, _, err := splitHTTPURL(referrer)
		if err != nil {
			return evErr(index, "referrer", "%v", err)
		}
		e.Referrer, e.ReferrerHost = referrer, host
	}
	if lim := p.limit(); lim.titleBytes > 0 && len(title) > lim.titleBytes {
		if !lim.truncate {
			return evErr(index, "title", "is %d bytes, more than the limit of %d", len(title), lim.titleBytes)
		}
		title = truncate(title, lim.titleBytes)
	}
	e.Title = title
	return p.props(e, index)
}

// readProps adds the members of a props object (valid JSON) to p.pairs.
func (p *eventParser) readProps(obj string) {
	sc := newScanner(obj)
	for more := sc.beginObject(); more; more = sc.nextMember() {
		key := sc.memberKey()
		kind, text, s := sc.next(2)
		if kind == kindString {
			text = s
		}
		p.pairs = append(p.pairs, propPair{key: key, value: text, kind: kind})
	}
}

// props checks the properties read and stores them, sorted by name, in e.
func (p *eventParser) props(e *Event, index int) *EventError {
	pairs := p.pairs
	if len(pairs) == 0 {
		return nil
	}
	// Sorted by name; of properties with the same name, the last one counts.
	slices.SortStableFunc(pairs, func(a, b propPair) int { return strings.Compare(a.key, b.key) })
	n := 0
	for i := range pairs {
		if i+1 < len(pairs) && pairs[i+1].key == pairs[i].key {
			continue
		}
		pairs[n] = pairs[i]
		n++
	}
	pairs = pairs[:n]
	lim := p.limit()
	if lim.props > 0 && len(pairs) > lim.props {
		return evErr(index, "props", "has %d properties, more than the limit of %d", len(pairs), lim.props)
	}
	for _, pr := range pairs {
		if pr.key == "" || lim.keyBytes > 0 && len(pr.key) > lim.keyBytes {
			if lim.keyBytes == 0 {
				return evErr(index, "props", "has a property without a name")
			}
			return evErr(index, "props", "property name %q must be 1 to %d bytes", truncate(pr.key, lim.keyBytes+8), lim.keyBytes)
		}
		switch pr.kind {
		case kindObject, kindArray, kindNull:
			return evErr(index, "props."+pr.key, "must be a string, number or boolean")
		}
		if lim.valueBytes > 0 && len(pr.value) > lim.valueBytes && !lim.truncate {
			return evErr(index, "props."+truncate(pr.key, 64), "is %d bytes, more than the limit of %d", len(pr.value), lim.valueBytes)
		}
	}
	kv := p.take(2 * len(pairs))
	keys, values := kv[:len(pairs):len(pairs)], kv[len(pairs):]
	for i, pr := range pairs {
		keys[i] = pr.key
		switch pr.kind {
		case kindTrue:
			values[i] = "true"
		case kindFalse:
			values[i] = "false"
		default:
			values[i] = pr.value
			if lim.valueBytes > 0 {
				values[i] = truncate(pr.value, lim.valueBytes)
			}
		}
	}
	e.PropKeys, e.PropValues = keys, values
	return nil
}

// eventType returns the canonical event type, "" when t is not one.
func eventType(t string) string {
	switch t {
	case "page":
		return "page"
	case "track":
		return "track"
	case "identify":
		return "identify"
	case "screen":
		return "screen"
	case "group":
		return "group"
	case "alias":
		return "alias"
	}
	return ""
}

// utmParams are the query parameters readUTM reads, in the order of its bits.
var utmParams = [...]string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"}

// readUTM sets e's UTM fields from a raw query: for each parameter the first
// value, as url.ParseQuery and Values.Get read it.
func (e *Event) readUTM(query string) {
	var seen uint8
	for query != "" && seen != 1<<len(utmParams)-1 {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, ok := queryUnescape(k)
		if !ok {
			continue
		}
		i := slices.Index(utmParams[:], k)
		if i < 0 || seen&(1<<i) != 0 {
			continue
		}
		if v, ok = queryUnescape(v); !ok {
			continue
		}
		seen |= 1 << i
		switch i {
		case 0:
			e.UTMSource = v
		case 1:
			e.UTMMedium = v
		case 2:
			e.UTMCampaign = v
		case 3:
			e.UTMTerm = v
		case 4:
			e.UTMContent = v
		}
	}
}

// queryUnescape is url.QueryUnescape, without allocating when s holds
// nothing to unescape.
func queryUnescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// splitHTTPURL checks that s is an absolute http or https URL of at most
// MaxURLBytes and returns its host name, escaped path and raw query, as
// url.Parse, URL.Hostname and URL.EscapedPath give them.
func splitHTTPURL(s string) (host, path, query string, err error) {
	if len(s) > MaxURLBytes {
		return "", "", "", fmt.Errorf("is %d bytes, more than the limit of %d", len(s), MaxURLBytes)
	}
	if host, path, query, ok := splitPlainURL(s); ok {
		return host, path, query, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", "", fmt.Errorf("must be an absolute http(s) URL, got %q", truncate(s, 80))
	}
	return u.Hostname(), u.EscapedPath(), u.RawQuery, nil
}

// hostBytes and pathBytes are the bytes splitPlainURL takes in a host
// name and a path: those url.Parse keeps as they are.
var hostBytes, pathBytes = func() (h, p [256]bool) {
	for c := range 256 {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		h[c] = alnum || strings.IndexByte("-._~", byte(c)) >= 0
		p[c] = alnum || strings.IndexByte("-._~$&+,/:;=@", byte(c)) >= 0
	}
	return h, p
}()

// splitPlainURL splits the common shape of page URL without allocating:
// a lower-case http(s) scheme, a host name without user, port or escapes, a
// path of bytes that need no escaping. For any other URL it returns false,
// and url.Parse decides.
func splitPlainURL(s string) (host, path, query string, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(s, "https://"):
		rest = s[len("https://"):]
	case strings.HasPrefix(s, "http://"):
		rest = s[len("http://"):]
	default:
		return "", "", "", false
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		if strings.IndexByte(rest[i:], '%') >= 0 {
			return "", "", "", false // url.Parse checks the fragment's escapes
		}
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query = rest[:i], rest[i+1:]
		for i := 0; i < len(query); i++ {
			if c := query[i]; c < 0x20 || c == 0x7f {
				return "", "", "", false
			}
		}
	}
	end := strings.IndexByte(rest, '/')
	if end < 0 {
		end = len(rest)
	}
	host, path = rest[:end], rest[end:]
	if host == "" {
		return "", "", "", false
	}
	for i := 0; i < len(host); i++ {
		if !hostBytes[host[i]] {
			return "", "", "", false
		}
	}
	for i := 0; i < len(path); i++ {
		if !pathBytes[path[i]] {
			return "", "", "", false
		}
	}
	return host, path, query, true
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
