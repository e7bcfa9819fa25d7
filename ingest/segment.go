package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
)

// segmentNamespace derives event ids from Segment messageIds that are not
// UUIDs, so a resent message keeps its id.
var segmentNamespace = uuid.MustParse("b8f5d1f8-6d0e-4a47-9c55-7e1f2a6d8c31")

// segmentLimits: Segment limits a message to 32 KB and nothing in it
// further; Pulse keeps its bounds on the name and URLs (decode.go).
var segmentLimits = eventLimits{}

// segmentBatch is a /v1/batch body. Its context is merged into every
// message's (the message's keys win), as Segment's HTTP API documents.
type segmentBatch struct {
	Batch    []json.RawMessage          `json:"batch"`
	WriteKey string                     `json:"writeKey"`
	SentAt   string                     `json:"sentAt"`
	Context  map[string]json.RawMessage `json:"context"`
}

// segmentMessage is one Segment call: the common fields and those of every
// call type (Segment's Spec).
type segmentMessage struct {
	Type              string                     `json:"type"`
	MessageID         string                     `json:"messageId"`
	Timestamp         string                     `json:"timestamp"`
	OriginalTimestamp string                     `json:"originalTimestamp"`
	SentAt            string                     `json:"sentAt"`
	UserID            json.RawMessage            `json:"userId"`
	AnonymousID       json.RawMessage            `json:"anonymousId"`
	GroupID           json.RawMessage            `json:"groupId"`
	PreviousID        json.RawMessage            `json:"previousId"`
	Event             string                     `json:"event"`
	Name              string                     `json:"name"`
	Category          string                     `json:"category"`
	Properties        map[string]json.RawMessage `json:"properties"`
	Traits            map[string]json.RawMessage `json:"traits"`
	Context           map[string]json.RawMessage `json:"context"`
	WriteKey          string                     `json:"writeKey"`
}

// segment handles one Segment endpoint; typ is the message type a
// single-message endpoint implies ("" for /v1/batch). A request is taken
// whole or refused whole, so that what Segment's libraries report for each
// of its messages (delivered, or the error) is true of every one.
func (h *FormatsHandler) segment(typ string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		body := c.Body()
		if len(body) > MaxSegmentBatchBytes {
			return segmentRefuse(c, fiber.StatusBadRequest, "the body is "+strconv.Itoa(len(body))+" bytes, more than Segment's limit of 500 KB", nil)
		}
		var (
			batch segmentBatch
			msgs  []json.RawMessage
		)
		if typ == "" {
			if err := json.Unmarshal(body, &batch); err != nil {
				return segmentRefuse(c, fiber.StatusBadRequest, "the body must be {\"batch\": [messages…]}: "+err.Error(), nil)
			}
			msgs = batch.Batch
		} else {
			if !json.Valid(bytes.TrimSpace(body)) || bytes.TrimSpace(body)[0] != '{' {
				return segmentRefuse(c, fiber.StatusBadRequest, "the body must be one Segment message, a JSON object", nil)
			}
			var m struct {
				WriteKey string `json:"writeKey"`
			}
			_ = json.Unmarshal(body, &m)
			msgs, batch.WriteKey = []json.RawMessage{body}, m.WriteKey
		}
		writeKey := batch.WriteKey
		if k := basicUser(c.Get(fiber.HeaderAuthorization)); k != "" {
			writeKey = k
		}
		key, err := h.dir.AuthenticateAPIKey(writeKey)
		if err != nil || !key.HasScope(auth.ScopeIngest) {
			return segmentRefuse(c, fiber.StatusUnauthorized, "the write key must be a Pulse API key (sk_…) with the ingest scope, sent as the HTTP Basic user", nil)
		}
		sites := h.dir.Sites(key.OrgID)
		received := h.now().UTC()

		// Messages are grouped by site; a body almost always holds one site's.
		bySite := map[uuid.UUID][]rawEvent{}
		siteOf := map[uuid.UUID]Site{}
		var rejected []EventError
		for i, raw := range msgs {
			re, site, evErr := segmentEvent(raw, i, typ, batch, sites, received)
			if evErr != nil {
				rejected = append(rejected, *evErr)
				continue
			}
			bySite[site.ID] = append(bySite[site.ID], re)
			siteOf[site.ID] = SiteOf(site)
		}
		for id, res := range bySite {
			rejected = h.checkEvents(siteOf[id], res, rejected)
		}
		if len(rejected) > 0 {
			for _, r := range rejected {
				h.m.rejected.WithLabelValues(metricField(r.Field)).Inc()
			}
			slices.SortStableFunc(rejected, func(a, b EventError) int { return a.Index - b.Index })
			return segmentRefuse(c, fiber.StatusBadRequest, "nothing stored: "+refusedSummary(rejected, len(msgs)), rejected)
		}
		accepted := 0
		for id, res := range bySite {
			n, rej, err := h.accept(c.UserContext(), siteOf[id], res, nil)
			if err != nil {
				return busy(c, err)
			}
			accepted += n
			rejected = append(rejected, rej...)
		}
		if len(rejected) > 0 { // decoded differently a moment later: at most an age on the 7-day bound
			msg := strconv.Itoa(accepted) + " stored, refused: " + refusedSummary(rejected, len(msgs))
			return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"success": false, "error": msg, "accepted": accepted, "rejected": rejected})
		}
		return c.Status(fiber.StatusOK).JSON(fiber.Map{"success": true, "accepted": accepted, "rejected": []EventError{}})
	}
}

// refusedSummary says in one line why a request was refused.
func refusedSummary(rejected []EventError, messages int) string {
	r := rejected[0]
	s := fmt.Sprintf("message %d: %s %s", r.Index, r.Field, r.Message)
	if messages == 1 {
		s = fmt.Sprintf("%s %s", r.Field, r.Message)
	}
	if len(rejected) > 1 {
		s += fmt.Sprintf(" (and %d more refused messages)", len(rejected)-1)
	}
	return s
}

// segmentRefuse answers a Segment request refused as a whole: nothing of it
// was stored. The reason also goes into the status line, which Segment's
// libraries report with the status ("[400] Bad Request: …").
func segmentRefuse(c *fiber.Ctx, status int, msg string, rejected []EventError) error {
	reason := []byte(utils.StatusMessage(status) + ": " + msg)
	if len(reason) > maxReasonBytes {
		reason = append(reason[:maxReasonBytes-3], "..."...)
	}
	for i, b := range reason {
		if b < 0x20 || b > 0x7e {
			reason[i] = '?' // a status line holds printable ASCII only
		}
	}
	c.Status(status)
	c.Response().Header.SetStatusMessage(reason)
	if rejected == nil {
		rejected = []EventError{}
	}
	return c.JSON(fiber.Map{"success": false, "error": msg, "accepted": 0, "rejected": rejected})
}

// maxReasonBytes bounds the reason phrase of a refused Segment request.
const maxReasonBytes = 300

// segmentEvent translates one Segment message into our event format, with
// what that has no field for in its foreignFields.
func segmentEvent(raw json.RawMessage, index int, typ string, batch segmentBatch, sites []auth.Site, received time.Time) (rawEvent, auth.Site, *EventError) {
	fail := func(field, format string, args ...any) (rawEvent, auth.Site, *EventError) {
		return rawEvent{}, auth.Site{}, evErr(index, field, format, args...)
	}
	if len(raw) > MaxSegmentMessageBytes {
		return fail("message", "is %d bytes, more than Segment's limit of 32 KB", len(raw))
	}
	var m segmentMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fail("message", "must be a Segment message object: %v", err)
	}
	if typ != "" {
		m.Type = typ
	}
	ids := map[string]string{}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"userId", m.UserID}, {"anonymousId", m.AnonymousID}, {"groupId", m.GroupID}, {"previousId", m.PreviousID}} {
		s, ok := idText(f.raw)
		if !ok {
			return fail(f.name, "must be a string")
		}
		ids[f.name] = s
	}
	userID := ids["userId"]
	if userID == "" && ids["anonymousId"] == "" {
		return fail("userId", "is required, or anonymousId: every Segment message names its user")
	}
	switch {
	case m.Type == "group" && ids["groupId"] == "":
		return fail("groupId", "is required for group calls")
	case m.Type == "alias" && ids["previousId"] == "":
		return fail("previousId", "is required for alias calls")
	case m.Type == "alias" && userID == "":
		return fail("userId", "is required for alias calls")
	}

	ctx := maps.Clone(batch.Context)
	if ctx == nil {
		ctx = map[string]json.RawMessage{}
	}
	maps.Copy(ctx, m.Context)
	ip, hasIP := jsonString(ctx["ip"])
	if v := bytes.TrimSpace(ctx["ip"]); len(v) > 0 && string(v) != "null" && !hasIP {
		return fail("context.ip", "must be a string")
	}
	hasIP = hasIP && ip != ""
	agent, ok := jsonString(ctx["userAgent"])
	if v := bytes.TrimSpace(ctx["userAgent"]); len(v) > 0 && string(v) != "null" && !ok {
		return fail("context.userAgent", "must be a string")
	}
	page := jsonObject(ctx["page"])
	campaign := jsonObject(ctx["campaign"])
	f := &foreignFields{limits: &segmentLimits, groupID: ids["groupId"], previousID: ids["previousId"]}
	if f.groupID == "" {
		if g, ok := idText(ctx["groupId"]); ok {
			f.groupID = g
		}
	}
	for i, k := range []string{"source", "medium", "name", "term", "content"} {
		f.campaign[i], _ = jsonString(campaign[k])
	}
	// ip and userAgent only feed enrichment (the visitor, the place, the
	// browser), as for the tracker's events; the rest is kept as sent.
	delete(ctx, "ip")
	delete(ctx, "userAgent")
	if len(ctx) > 0 {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(ctx); err != nil {
			return fail("context", "must be a JSON object: %v", err)
		}
		f.context = strings.TrimSuffix(b.String(), "\n")
	}

	var props map[string]json.RawMessage
	ev := map[string]any{"type": m.Type}
	contextURL, _ := jsonString(page["url"])
	pageURL := contextURL
	referrer, _ := jsonString(page["referrer"])
	title, _ := jsonString(page["title"])
	switch m.Type {
	case "track":
		ev["name"], props = m.Event, m.Properties
	case "page", "screen":
		ev["name"], props = m.Name, m.Properties
		// The call's own page properties describe its page first.
		if s, ok := jsonString(props["url"]); ok && s != "" {
			pageURL = s
		}
		if s, ok := jsonString(props["referrer"]); ok && s != "" {
			referrer = s
		}
		if s, ok := jsonString(props["title"]); ok && s != "" {
			title = s
		}
	case "identify", "group":
		props = m.Traits
	}
	if m.Category != "" {
		// analytics-node puts a page's category in its properties too; a
		// screen's only at the top.
		if c, ok := props["category"]; ok {
			if s, _ := jsonString(c); s != m.Category {
				return fail("category", "differs from properties.category, and Pulse keeps one of them")
			}
		} else {
			props = maps.Clone(props)
			if props == nil {
				props = map[string]json.RawMessage{}
			}
			props["category"], _ = json.Marshal(m.Category)
		}
	}
	if pageURL != "" {
		ev["url"] = pageURL
	}
	if referrer != "" {
		ev["referrer"] = referrer
	}
	if title != "" {
		ev["title"] = title
	}
	if m.MessageID != "" {
		ev["id"] = SegmentEventID(m.MessageID).String()
	}
	ts, evErr := segmentTime(m, batch.SentAt, index, received)
	if evErr != nil {
		return rawEvent{}, auth.Site{}, evErr
	}
	if !ts.IsZero() {
		ev["ts"] = ts.UnixMilli()
	}
	if len(props) > 0 {
		ev["props"] = segmentProps(props)
	}
	out, err := json.Marshal(ev)
	if err != nil {
		return fail("message", "cannot be read: %v", err)
	}

	site, ok := pickSite(sites, pageURL, contextURL)
	if !ok {
		return fail("context.page.url", "cannot tell which of the organization's %d sites this message belongs to: send context.page.url on a site's domain", len(sites))
	}
	// A server sends Segment messages: the request's own address and user agent
	// are the server's, so only what the message says of the visitor counts.
	client := Client{ServerSide: true, UserAgent: agent, VisitorKey: first(ids["anonymousId"], userID)}
	if hasIP {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return fail("context.ip", "%q is not an IP address", truncate(ip, 64))
		}
		client.IP = addr.Unmap() // the end user's address, as server-side libraries pass it
		client.VisitorKey = ""
	}
	return rawEvent{raw: out, index: index, client: client, userID: userID, foreign: f}, site, nil
}

// SegmentEventID is the id of the event a Segment message is stored as: its
// messageId when that is a UUID, else a UUID derived from it, so that a
// resent message keeps its id.
func SegmentEventID(messageID string) uuid.UUID {
	if id, err := uuid.Parse(messageID); err == nil {
		return id
	}
	return uuid.NewSHA1(segmentNamespace, []byte(messageID))
}

// segmentTime is when a message's event happened, corrected for the clock of
// its sender as Segment does: receivedAt - (sentAt - originalTimestamp),
// where originalTimestamp is the message's timestamp unless it has its own,
// and sentAt the message's or else its batch's. Without sentAt the timestamp
// counts as it is; without a timestamp the event happened when received (the
// zero time).
func segmentTime(m segmentMessage, batchSentAt string, index int, received time.Time) (time.Time, *EventError) {
	field, orig := "timestamp", m.Timestamp
	if m.OriginalTimestamp != "" {
		field, orig = "originalTimestamp", m.OriginalTimestamp
	}
	if orig == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, orig)
	if err != nil {
		return time.Time{}, evErr(index, field, "must be an ISO 8601 time such as 2026-11-24T12:00:00.000Z, got %q", truncate(orig, 64))
	}
	if sent := first(m.SentAt, batchSentAt); sent != "" {
		s, err := time.Parse(time.RFC3339Nano, sent)
		if err != nil {
			return time.Time{}, evErr(index, "sentAt", "must be an ISO 8601 time such as 2026-11-24T12:00:00.000Z, got %q", truncate(sent, 64))
		}
		t = received.Add(-s.Sub(t))
	}
	// The pipeline's bounds (decode.go), said here in Segment's terms, and
	// refused rather than the future replaced by the time received.
	bound := received.Truncate(time.Second)
	switch {
	case t.After(bound.Add(MaxClockSkew)) && first(m.SentAt, batchSentAt) != "":
		return time.Time{}, evErr(index, field, "%s is later than the message was sent (sentAt): its event cannot have happened yet", orig)
	case t.After(bound.Add(MaxClockSkew)):
		return time.Time{}, evErr(index, field, "%s is more than %s in the future: send sentAt with it to correct the clock", orig, MaxClockSkew)
	case t.Before(bound.Add(-MaxEventAge)):
		return time.Time{}, evErr(index, field, "%s is more than %s before the message was received: Pulse takes events of the last 7 days only", orig, MaxEventAge)
	}
	return t, nil
}

// segmentProps returns properties or traits as our event's props: strings,
// numbers and booleans as sent, anything else (objects, arrays, null) as its
// JSON text.
func segmentProps(props map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(props))
	for k, v := range props {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0:
			continue
		case v[0] == '{' || v[0] == '[' || v[0] == 'n':
			var b bytes.Buffer
			_ = json.Compact(&b, v)
			out[k], _ = json.Marshal(b.String())
		default:
			out[k] = v
		}
	}
	return out
}

// idText reads a Segment id: a string, or a number as its text; null or
// absent is "". ok is false for any other JSON value.
func idText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", true
	case raw[0] == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err == nil
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		return string(raw), true
	}
	return "", false
}

// jsonString returns raw's string when it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonObject returns raw's members when it is a JSON object, else nil.
func jsonObject(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// basicUser returns the user of an HTTP Basic Authorization header.
func basicUser(header string) string {
	const prefix = "basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header[len(prefix):]))
	if err != nil {
		return ""
	}
	user, _, _ := strings.Cut(string(raw), ":")
	return user
}
