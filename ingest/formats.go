package ingest

import (
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
)

// formatsDirectory is the part of *auth.Store the formats use.
type formatsDirectory interface {
	AuthenticateAPIKey(secret string) (auth.APIKey, error)
	Sites(org uuid.UUID) []auth.Site
	SiteByDomain(domain string) (auth.Site, error)
	eventQuotas
}

// FormatsHandler serves Segment's HTTP Tracking API (/v1/batch, /v1/track,
// /v1/page, /v1/screen, /v1/identify, /v1/group, /v1/alias; segment.go) and
// Plausible's Events API (POST /api/event; plausible.go). Each message
// becomes an event of our own format, with what that format has no field
// for alongside (foreignFields), and takes the same path as the WebSocket's:
// validation, enrichment, the batcher and the live stream.
// docs/ingest-formats.md says what becomes of every field.
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

// foreignFields is what a Segment or Plausible message says beyond our event
// format, set on its event once decoded (before enrichment, which reads the
// UTM fields), with the limits of its format.
type foreignFields struct {
	limits                       *eventLimits
	groupID, previousID, context string
	// campaign holds Segment's context.campaign as utm_source, utm_medium,
	// utm_campaign, utm_term, utm_content; an empty one keeps the URL's.
	campaign       [5]string
	fragment       string // "#…" added to the path: Plausible's hash-based routing
	nonInteractive bool
}

// eventLimits returns the limits of f's format; nil (the protocol's) for our
// own events.
func (f *foreignFields) eventLimits() *eventLimits {
	if f == nil {
		return nil
	}
	return f.limits
}

// fill sets what f holds on e, a decoded event.
func (f *foreignFields) fill(e *Event) {
	if f == nil {
		return
	}
	e.GroupID, e.PreviousID, e.Context, e.NonInteractive = f.groupID, f.previousID, f.context, f.nonInteractive
	e.Pathname += f.fragment
	for i, dst := range []*string{&e.UTMSource, &e.UTMMedium, &e.UTMCampaign, &e.UTMTerm, &e.UTMContent} {
		if f.campaign[i] != "" {
			*dst = f.campaign[i]
		}
	}
}

// checkEvents decodes events as accept will, without taking them, and
// returns their rejections: the formats refuse a request as a whole, so that
// the answer their clients see (success or failure) holds for every event.
func (h *FormatsHandler) checkEvents(site Site, in []rawEvent, rejected []EventError) []EventError {
	received := h.now().UTC().Truncate(time.Second)
	var (
		parser eventParser
		e      Event
	)
	for _, re := range in {
		parser.limits = re.foreign.eventLimits()
		e = Event{}
		if evErr := parser.parse(&e, string(re.raw), re.index, site, received); evErr != nil {
			rejected = append(rejected, *evErr)
		}
	}
	return rejected
}

// SiteOf is what ingest keeps of a site of the tenancy store.
func SiteOf(s auth.Site) Site {
	return Site{TenantID: s.OrgID, ID: s.ID, PublicKey: s.PublicKey, AllowedOrigins: s.AllowedOrigins, HonorDNT: s.HonorDNT}
}

// pickSite chooses the site whose domain is the page URL's host (with or
// without www.), or the organization's only site.
func pickSite(sites []auth.Site, urls ...string) (auth.Site, bool) {
	for _, s := range urls {
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

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
