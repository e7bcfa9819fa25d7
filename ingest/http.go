package ingest

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/pulse-analytics/pulse/auth"
)

// siteResolver finds the site a public site key belongs to.
type siteResolver interface {
	SiteByKey(key string) (Site, bool)
}

// StaticSites resolves a fixed set of sites by public key; `pulse dev` uses it
// for its development site.
type StaticSites map[string]Site

// SiteByKey implements siteResolver.
func (s StaticSites) SiteByKey(key string) (Site, bool) {
	site, ok := s[key]
	return site, ok
}

// HTTPHandler serves POST /v1/events.
type HTTPHandler struct {
	pipeline
	sites siteResolver
	log   *slog.Logger
}

// NewHTTPHandler returns the handler of POST /v1/events.
func NewHTTPHandler(sites siteResolver, b *Batcher, log *slog.Logger, m *Metrics) *HTTPHandler {
	return &HTTPHandler{pipeline: newPipeline(b, m), sites: sites, log: log}
}

// WithHooks takes the enrichment, bot and live-stream settings of cfg, the
// same the WebSocket server uses. Call it before serving.
func (h *HTTPHandler) WithHooks(cfg Config) *HTTPHandler {
	h.hooks = cfg.hooks(h.m)
	return h
}

// WithDedup shares the WebSocket server's memory of recent event ids: an
// event the tracker sends again by HTTP (sendBeacon at pagehide) after it
// went over the socket is answered as accepted and not stored twice.
func (h *HTTPHandler) WithDedup(s *Server) *HTTPHandler {
	h.dedup = s.dedup
	return h
}

// WithQuotas makes the handler count events against their tenant's quota and
// answer 429 with Retry-After beyond it, as the WebSocket does.
func (h *HTTPHandler) WithQuotas(q eventQuotas) *HTTPHandler {
	h.quotas = q
	return h
}

// postResult is the body of a 202 answer.
type postResult struct {
	Accepted int          `json:"accepted"`
	Rejected []EventError `json:"rejected"`
}

// PostEvents accepts one event or an array of events for the site whose public
// key is in the `site` query parameter. Valid events are accepted even when
// others in the same body are rejected; the answer lists the rejected ones.
func (h *HTTPHandler) PostEvents(c *fiber.Ctx) error {
	key := c.Query("site")
	if key == "" {
		return fail(c, fiber.StatusBadRequest, "the site query parameter is required: POST /v1/events?site=pk_…")
	}
	site, ok := h.sites.SiteByKey(key)
	if !ok {
		return fail(c, fiber.StatusNotFound, "site key "+strconv.Quote(truncate(key, 64))+" is not known")
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" {
		if auth.CheckOrigin(auth.Site{AllowedOrigins: site.AllowedOrigins}, origin) != nil {
			return fail(c, fiber.StatusForbidden, "origin "+strconv.Quote(truncate(origin, 80))+" is not allowed to send events for this site")
		}
		c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
		c.Vary(fiber.HeaderOrigin)
	}
	if declined := optedOut(c, site.HonorDNT); declined != "" {
		// The visitor opted out, so nothing is stored.
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"accepted": 0, "rejected": []EventError{}, "declined": declined})
	}
	body := c.Body()
	if len(body) > MaxRequestBytes {
		return fail(c, fiber.StatusRequestEntityTooLarge, "body is "+strconv.Itoa(len(body))+" bytes, more than the limit of "+strconv.Itoa(MaxRequestBytes))
	}
	raws, err := decodeEvents(body)
	if err != nil {
		return fail(c, fiber.StatusBadRequest, err.Error())
	}
	if len(raws) > MaxEventsPerRequest {
		return fail(c, fiber.StatusRequestEntityTooLarge, strconv.Itoa(len(raws))+" events in one request, more than the limit of "+strconv.Itoa(MaxEventsPerRequest))
	}

	client := Client{UserAgent: c.Get(fiber.HeaderUserAgent)}
	client.IP = auth.ClientAddr(c)
	in := make([]rawEvent, len(raws))
	for i, raw := range raws {
		in[i] = rawEvent{raw: raw, index: i, client: client}
	}
	n, rejected, err := h.accept(c.UserContext(), site, in, []EventError{})
	if err != nil {
		return busy(c, err)
	}
	res := postResult{Accepted: n, Rejected: rejected}
	if n == 0 && len(rejected) > 0 {
		return c.Status(fiber.StatusBadRequest).JSON(res)
	}
	return c.Status(fiber.StatusAccepted).JSON(res) // n == 0 without rejections: only bots, dropped by configuration
}

// optedOut names the opt-out a request carries: Global Privacy Control
// always, Do Not Track when the site honours it; "" when there is none.
func optedOut(c *fiber.Ctx, honorDNT bool) string {
	switch {
	case c.Get("Sec-GPC") == "1":
		return "Sec-GPC: 1"
	case honorDNT && c.Get("DNT") == "1":
		return "DNT: 1"
	}
	return ""
}

// corsMaxAge is how long browsers may cache a preflight answer.
const corsMaxAge = 24 * time.Hour

// Preflight answers a browser's CORS preflight for POST /v1/events: allowed
// only from the site's allowed origins.
func (h *HTTPHandler) Preflight(c *fiber.Ctx) error {
	site, ok := h.sites.SiteByKey(c.Query("site"))
	origin := c.Get(fiber.HeaderOrigin)
	if !ok || auth.CheckOrigin(auth.Site{AllowedOrigins: site.AllowedOrigins}, origin) != nil {
		return fail(c, fiber.StatusForbidden, "origin not allowed for this site key")
	}
	c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	c.Set(fiber.HeaderAccessControlAllowMethods, "POST")
	c.Set(fiber.HeaderAccessControlAllowHeaders, "Content-Type")
	c.Set(fiber.HeaderAccessControlMaxAge, strconv.Itoa(int(corsMaxAge.Seconds())))
	c.Vary(fiber.HeaderOrigin)
	return c.SendStatus(fiber.StatusNoContent)
}

// metricField keeps the rejected-events label set small: props.<key> becomes props.
func metricField(field string) string {
	if len(field) > len("props.") && field[:len("props.")] == "props." {
		return "props"
	}
	return field
}

func fail(c *fiber.Ctx, status int, msg string) error {
	return c.Status(status).JSON(fiber.Map{"error": msg})
}
