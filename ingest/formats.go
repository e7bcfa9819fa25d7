package ingest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
)

// Limits of the HTTP formats other tools speak, as those tools document them.
const (
	// MaxSegmentBatchBytes is Segment's limit on one /v1/batch body.
	MaxSegmentBatchBytes = 500 << 10
	// MaxSegmentMessageBytes is Segment's limit on one message.
	MaxSegmentMessageBytes = 32 << 10
	// MaxPlausibleBytes bounds one Plausible event body.
	MaxPlausibleBytes = 16 << 10
)

// segmentNamespace derives event ids from Segment messageIds that are not
// UUIDs, so a resent message keeps its id.
var segmentNamespace = uuid.MustParse("b8f5d1f8-6d0e-4a47-9c55-7e1f2a6d8c31")

// formatsDirectory is the part of *auth.Store the formats use.
type formatsDirectory interface {
	AuthenticateAPIKey(secret string) (auth.APIKey, error)
	Sites(org uuid.UUID) []auth.Site
	SiteByDomain(domain string) (auth.Site, error)
	AllowEvents(org uuid.UUID, n int) auth.Decision
}

// FormatsHandler serves Segment's HTTP Tracking API (/v1/batch, /v1/track,
// /v1/page, /v1/screen, /v1/identify, /v1/group, /v1/alias) and Plausible's
// Events API (POST /api/event). Each message becomes an event of our own
// format and takes the same path as the WebSocket's: validation, enrichment,
// the batcher and the live stream.
type FormatsHandler struct {
	pipeline
	dir formatsDirectory
	log *slog.Logger
}

// NewFormatsHandler returns the handler of the foreign formats.
func NewFormatsHandler(dir formatsDirectory, b *Batcher, log *slog.Logger, m *Metrics) *FormatsHandler {
	h := &FormatsHandler{pipeline: newPipeline(b, m), dir: dir, log: log}
	h.quotas = dir
	return h
}

// WithHooks takes the enrichment, bot and live-stream settings of cfg.
func (h *FormatsHandler) WithHooks(cfg Config) *FormatsHandler {
	h.hooks = cfg.hooks(h.m)
	return h
}

// Register mounts the routes.
func (h *FormatsHandler) Register(r fiber.Router) {
	r.Post("/v1/batch", h.segment(""))
	for _, t := range []string{"track", "page", "screen", "identify", "group", "alias"} {
		r.Post("/v1/"+t, h.segment(t))
	}
	r.Post("/api/event", h.plausible)
}

// --- Segment

type segmentMessage struct {
	Type        string         `json:"type"`
	MessageID   string         `json:"messageId"`
	Timestamp   string         `json:"timestamp"`
	UserID      any            `json:"userId"`
	Event       string         `json:"event"`
	Name        string         `json:"name"`
	Properties  map[string]any `json:"properties"`
	Traits      map[string]any `json:"traits"`
	WriteKey    string         `json:"writeKey"`
	GroupID     any            `json:"groupId"`
	PreviousID  any            `json:"previousId"`
	AnonymousID any            `json:"anonymousId"`
	Context     struct {
		IP        string `json:"ip"`
		UserAgent string `json:"userAgent"`
		Page      struct {
			URL      string `json:"url"`
			Referrer string `json:"referrer"`
			Title    string `json:"title"`
		} `json:"page"`
	} `json:"context"`
}

// segment handles one Segment endpoint; typ is the message type a single-message
// endpoint implies ("" for /v1/batch).
func (h *FormatsHandler) segment(typ string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		body := c.Body()
		if len(body) > MaxSegmentBatchBytes {
			return segmentFail(c, fiber.StatusRequestEntityTooLarge, "body is "+strconv.Itoa(len(body))+" bytes, more than Segment's limit of 500 KB")
		}
		var msgs []json.RawMessage
		var writeKey string
		if typ == "" {
			var b struct {
				Batch    []json.RawMessage `json:"batch"`
				WriteKey string            `json:"writeKey"`
			}
			if err := json.Unmarshal(body, &b); err != nil {
				return segmentFail(c, fiber.StatusBadRequest, "body must be {\"batch\": [messages…]}: "+err.Error())
			}
			msgs, writeKey = b.Batch, b.WriteKey
		} else {
			if !json.Valid(body) {
				return segmentFail(c, fiber.StatusBadRequest, "body is not valid JSON")
			}
			msgs = []json.RawMessage{body}
			var m struct {
				WriteKey string `json:"writeKey"`
			}
			_ = json.Unmarshal(body, &m)
			writeKey = m.WriteKey
		}
		if k := basicUser(c.Get(fiber.HeaderAuthorization)); k != "" {
			writeKey = k
		}
		key, err := h.dir.AuthenticateAPIKey(writeKey)
		if err != nil || !key.HasScope(auth.ScopeIngest) {
			return segmentFail(c, fiber.StatusUnauthorized, "the write key must be a Pulse API key (sk_…) with the ingest scope, sent as the HTTP Basic user")
		}
		sites := h.dir.Sites(key.OrgID)

		// Messages are grouped by site; a body almost always holds one site's.
		bySite := map[uuid.UUID][]rawEvent{}
		siteOf := map[uuid.UUID]auth.Site{}
		var rejected []EventError
		for i, raw := range msgs {
			fe, site, evErr := segmentEvent(raw, i, typ, sites)
			if evErr != nil {
				rejected = append(rejected, *evErr)
				h.m.rejected.WithLabelValues(metricField(evErr.Field)).Inc()
				continue
			}
			bySite[site.ID] = append(bySite[site.ID], fe)
			siteOf[site.ID] = site
		}
		accepted := 0
		for id, fes := range bySite {
			n, rej, err := h.accept(c.UserContext(), SiteOf(siteOf[id]), fes, nil)
			if err != nil {
				return busy(c, err)
			}
			accepted += n
			rejected = append(rejected, rej...)
		}
		if rejected == nil {
			rejected = []EventError{}
		}
		status := fiber.StatusOK
		if accepted == 0 && len(rejected) > 0 {
			status = fiber.StatusBadRequest
		}
		return c.Status(status).JSON(fiber.Map{"success": status == fiber.StatusOK, "accepted": accepted, "rejected": rejected})
	}
}

// segmentEvent translates one Segment message into our event format.
func segmentEvent(raw json.RawMessage, index int, typ string, sites []auth.Site) (rawEvent, auth.Site, *EventError) {
	fail := func(field, msg string) (rawEvent, auth.Site, *EventError) {
		return rawEvent{}, auth.Site{}, &EventError{Index: index, Field: field, Message: msg}
	}
	if len(raw) > MaxSegmentMessageBytes {
		return fail("event", "is "+strconv.Itoa(len(raw))+" bytes, more than Segment's limit of 32 KB")
	}
	var m segmentMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fail("event", "must be a Segment message object: "+err.Error())
	}
	if typ != "" {
		m.Type = typ
	}
	ev := map[string]any{"type": m.Type, "url": m.Context.Page.URL, "referrer": m.Context.Page.Referrer, "title": m.Context.Page.Title}
	props := m.Properties
	switch m.Type {
	case "track":
		ev["name"] = m.Event
	case "page", "screen":
		ev["name"] = m.Name
		if m.Type == "page" && m.Name == "" {
			ev["name"] = "pageview"
		}
		// Segment's standard page properties are columns of ours, not properties.
		props = maps.Clone(props)
		for _, k := range []string{"url", "referrer", "title", "path", "search"} {
			if v, ok := props[k].(string); ok && ev[k] == "" {
				ev[k] = v
			}
			delete(props, k)
		}
		delete(ev, "path")
		delete(ev, "search")
	case "identify", "group", "alias":
		props = m.Traits
	}
	if ev["url"] == "" {
		delete(ev, "url")
	}
	if ev["referrer"] == "" {
		delete(ev, "referrer")
	}
	if m.MessageID != "" {
		id, err := uuid.Parse(m.MessageID)
		if err != nil {
			id = uuid.NewSHA1(segmentNamespace, []byte(m.MessageID))
		}
		ev["id"] = id.String()
	}
	if m.Timestamp != "" {
		ts, err := time.Parse(time.RFC3339Nano, m.Timestamp)
		if err != nil {
			return fail("timestamp", "must be an ISO 8601 time such as 2026-11-24T12:00:00.000Z")
		}
		ev["ts"] = ts.UnixMilli()
	}
	flat := map[string]any{}
	for k, v := range props {
		switch v.(type) {
		case string, float64, bool:
			flat[k] = v
		case nil:
		default: // nested objects and arrays keep their JSON text
			b, _ := json.Marshal(v)
			flat[k] = string(b)
		}
	}
	if len(flat) > 0 {
		ev["props"] = flat
	}
	out, _ := json.Marshal(ev)

	site, ok := pickSite(sites, m.Context.Page.URL, ev["url"])
	if !ok {
		return fail("context.page.url", "cannot tell which of the organization's "+strconv.Itoa(len(sites))+" sites this message belongs to: send context.page.url on a site's domain")
	}
	// A server sends Segment messages: the request's own address and user agent
	// are the server's, so only what the message says of the visitor counts.
	client := Client{ServerSide: true, UserAgent: m.Context.UserAgent, VisitorKey: first(idString(m.AnonymousID), idString(m.UserID))}
	if ip, err := netip.ParseAddr(m.Context.IP); err == nil {
		client.IP = ip // the end user's address, as server-side libraries pass it
		client.VisitorKey = ""
	}
	return rawEvent{raw: out, index: index, client: client, userID: idString(m.UserID)}, site, nil
}

// SiteOf is what ingest keeps of a site of the tenancy store.
func SiteOf(s auth.Site) Site {
	return Site{TenantID: s.OrgID, ID: s.ID, PublicKey: s.PublicKey, AllowedOrigins: s.AllowedOrigins, HonorDNT: s.HonorDNT}
}

// pickSite chooses the site whose domain is the page URL's host (with or
// without www.), or the organization's only site.
func pickSite(sites []auth.Site, urls ...any) (auth.Site, bool) {
	for _, u := range urls {
		s, _ := u.(string)
		if p, err := url.Parse(s); err == nil && p.Host != "" {
			host := strings.TrimPrefix(strings.ToLower(p.Hostname()), "www.")
			for _, site := range sites {
				if site.Domain == host {
					return site, true
				}
			}
		}
	}
	if len(sites) == 1 {
		return sites[0], true
	}
	return auth.Site{}, false
}

func idString(v any) string {
	switch v := v.(type) {
	case string:
		return truncate(v, MaxNameBytes)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
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

func segmentFail(c *fiber.Ctx, status int, msg string) error {
	return c.Status(status).JSON(fiber.Map{"success": false, "error": msg})
}

// --- Plausible

type plausibleEvent struct {
	Name     string          `json:"name"`
	N        string          `json:"n"`
	URL      string          `json:"url"`
	U        string          `json:"u"`
	Domain   string          `json:"domain"`
	D        string          `json:"d"`
	Referrer string          `json:"referrer"`
	R        string          `json:"r"`
	Props    json.RawMessage `json:"props"`
	P        json.RawMessage `json:"p"`
	Revenue  json.RawMessage `json:"revenue"`
	Dollar   json.RawMessage `json:"$"`
}

// plausible handles POST /api/event: the site is chosen by domain, the
// visitor comes from the request's address and User-Agent, and the answer is
// Plausible's: 202 "ok".
func (h *FormatsHandler) plausible(c *fiber.Ctx) error {
	if len(c.Body()) > MaxPlausibleBytes {
		return c.Status(fiber.StatusRequestEntityTooLarge).SendString("body is larger than " + strconv.Itoa(MaxPlausibleBytes) + " bytes")
	}
	var p plausibleEvent
	if err := json.Unmarshal(c.Body(), &p); err != nil {
		return c.Status(fiber.StatusBadRequest).SendString("body must be a JSON object with name, url and domain")
	}
	name, pageURL, domains, ref := first(p.Name, p.N), first(p.URL, p.U), first(p.Domain, p.D), first(p.Referrer, p.R)
	var site auth.Site
	var err error = errors.New("domain is required")
	for _, d := range strings.Split(domains, ",") {
		if d = strings.TrimSpace(d); d != "" {
			if site, err = h.dir.SiteByDomain(d); err == nil {
				break
			}
		}
	}
	if err != nil {
		return c.Status(fiber.StatusBadRequest).SendString("domain " + strconv.Quote(truncate(domains, 80)) + " is not a site of this Pulse")
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" {
		if auth.CheckOrigin(site, origin) != nil {
			return c.Status(fiber.StatusForbidden).SendString("origin " + strconv.Quote(truncate(origin, 80)) + " is not allowed for " + site.Domain)
		}
		c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
		c.Vary(fiber.HeaderOrigin)
	}
	if optedOut(c, site.HonorDNT) != "" {
		return c.Status(fiber.StatusAccepted).SendString("ok") // the visitor opted out: nothing is stored
	}
	ev := map[string]any{"type": "track", "name": name, "url": pageURL}
	if name == "pageview" {
		ev["type"] = "page"
	}
	if ref != "" {
		ev["referrer"] = ref
	}
	props := map[string]any{}
	raw := p.Props
	if raw == nil {
		raw = p.P
	}
	if len(raw) > 0 && raw[0] == '"' { // the script sends props as a JSON string
		var s string
		_ = json.Unmarshal(raw, &s)
		raw = json.RawMessage(s)
	}
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &props); err != nil {
			return c.Status(fiber.StatusBadRequest).SendString("props must be an object of strings, numbers or booleans")
		}
	}
	rev := p.Revenue
	if rev == nil {
		rev = p.Dollar
	}
	if len(rev) > 0 && string(rev) != "null" {
		var r struct {
			Amount   any    `json:"amount"`
			Currency string `json:"currency"`
		}
		if json.Unmarshal(rev, &r) == nil {
			props["revenue_amount"], props["revenue_currency"] = r.Amount, r.Currency
		}
	}
	if len(props) > 0 {
		ev["props"] = props
	}
	out, _ := json.Marshal(ev)
	client := Client{UserAgent: c.Get(fiber.HeaderUserAgent)}
	client.IP = auth.ClientAddr(c)
	n, rejected, err := h.accept(c.UserContext(), SiteOf(site), []rawEvent{{raw: out, client: client}}, nil)
	if err != nil {
		return busy(c, err)
	}
	if n == 0 && len(rejected) > 0 {
		return c.Status(fiber.StatusBadRequest).SendString(rejected[0].Field + ": " + rejected[0].Message)
	}
	return c.Status(fiber.StatusAccepted).SendString("ok")
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
