package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
)

// pipeline is what the HTTP ingest paths (our own format, Segment's and
// Plausible's) share once a body is decoded: validation, enrichment, the
// tenant's quota, the memory of recent ids, the live publisher and the
// batcher. The WebSocket runs the same steps per frame, with acknowledgements.
type pipeline struct {
	batcher *Batcher
	m       *Metrics
	now     func() time.Time
	hooks   hooks
	quotas  eventQuotas // nil: no quota checks
	dedup   *dedup      // nil: no memory of recent ids
}

// eventQuotas checks events against their tenant's quota and their sender's
// daily budget (auth.Store; addr is Client.quotaAddr): an allowed event is
// in flight until SettleEvents says it is stored, left out or given up.
// Usage is metered by the writer, not here (usageMeter).
type eventQuotas interface {
	AllowEvents(org uuid.UUID, addr netip.Addr, n int) auth.Decision
	SettleEvents(org uuid.UUID, n int)
}

func newPipeline(b *Batcher, m *Metrics) pipeline {
	return pipeline{batcher: b, m: m, now: time.Now, hooks: Config{}.hooks(m)}
}

// rawEvent is one event in our wire format, with what its request says of the
// visitor and its position in the request (for rejections).
type rawEvent struct {
	raw    json.RawMessage
	index  int
	client Client
	userID string
	// foreign is what a Segment or Plausible message says beyond our event
	// format, and its format's limits; nil for our own events.
	foreign *foreignFields
}

// accept takes the events of one site. It returns how many were accepted (an
// id the node already holds counts as accepted: it is stored or about to be)
// and the rejected ones, appended to rejected. The error is quotaError beyond
// the tenant's quota, or the batcher's; then nothing was taken.
func (p *pipeline) accept(ctx context.Context, site Site, in []rawEvent, rejected []EventError) (int, []EventError, error) {
	received := p.now().UTC().Truncate(time.Second)
	events := make([]Event, len(in))
	parser := eventParser{block: 4*len(in) + 8}
	kept := 0
	for _, re := range in {
		parser.limits = re.foreign.eventLimits()
		if evErr := parser.parse(&events[kept], string(re.raw), re.index, site, received); evErr != nil {
			events[kept] = Event{}
			rejected = append(rejected, *evErr)
			p.m.rejected.WithLabelValues(metricField(evErr.Field)).Inc()
			continue
		}
		events[kept].UserID = re.userID
		re.foreign.fill(&events[kept])
		kept += len(p.hooks.enrich(events[kept:kept+1], re.client))
	}
	events = events[:kept]
	p.m.received.Add(float64(len(in)))
	if len(events) == 0 {
		return 0, rejected, nil
	}
	accepted := len(events)
	var ids []uuid.UUID
	if p.dedup != nil {
		var dups int
		events, dups = p.dedup.unseen(site.ID, events)
		p.m.duplicates.Add(float64(dups))
		if len(events) == 0 {
			return accepted, rejected, nil
		}
		ids = make([]uuid.UUID, len(events))
		for i := range events {
			ids[i] = events[i].ID
		}
	}
	n := len(events)
	// The quota's limits apply to what the batcher is to take, not to the
	// resends the node holds already. The events of one call come from one
	// request, so from one sender.
	if p.quotas != nil {
		if d := p.quotas.AllowEvents(site.TenantID, in[0].client.quotaAddr(), n); !d.Allowed {
			return 0, rejected, quotaError{d}
		}
	}
	done := p.done(site, ids, n)
	// The live view hears of the events before the batcher owns the slice,
	// as on the WebSocket.
	p.hooks.publish(site, 0, events)
	ctx, cancel := context.WithTimeout(ctx, MaxEnqueueWait)
	defer cancel()
	if err := p.batcher.Add(ctx, events, done); err != nil {
		if p.quotas != nil {
			p.quotas.SettleEvents(site.TenantID, n)
		}
		return 0, rejected, err
	}
	if p.dedup != nil {
		// Remembered only once the batcher holds them: after a refused Add the
		// client sends the same ids again, and they must not look seen.
		p.dedup.rememberIDs(site.ID, ids)
	}
	p.m.accepted.Add(float64(n))
	return accepted, rejected, nil
}

// done returns the callback of the batcher's Add of n events of site (ids
// when the node remembers ids): once they are committed or given up, the
// memory of ids learns it, and the events leave the tenant's quota's flight.
// nil when there is nothing to tell.
func (p *pipeline) done(site Site, ids []uuid.UUID, n int) func(error) {
	if p.dedup == nil && p.quotas == nil {
		return nil
	}
	return func(err error) {
		if p.dedup != nil {
			if err != nil {
				p.dedup.forget(site.ID, ids) // given up at shutdown: nothing holds them
			} else {
				p.dedup.committed(site.ID, ids)
			}
		}
		if p.quotas != nil {
			p.quotas.SettleEvents(site.TenantID, n)
		}
	}
}

// detachLive gives the strings of events that the live view may keep for
// long (name, path, source: its feed and goal names) one backing string per
// call, instead of the frame's (or request's) text they are substrings of,
// which a kept path would otherwise hold in memory whole.
func detachLive(events []Event) {
	n := 0
	for i := range events {
		e := &events[i]
		n += len(e.Name) + len(e.Pathname) + len(e.Source)
	}
	var b strings.Builder
	b.Grow(n)
	for i := range events {
		e := &events[i]
		b.WriteString(e.Name)
		b.WriteString(e.Pathname)
		b.WriteString(e.Source)
	}
	all := b.String()
	take := func(s string) string {
		s, all = all[:len(s)], all[len(s):]
		return s
	}
	for i := range events {
		e := &events[i]
		e.Name, e.Pathname, e.Source = take(e.Name), take(e.Pathname), take(e.Source)
	}
}

type quotaError struct{ d auth.Decision }

func (e quotaError) Error() string { return "over quota: " + e.d.Reason }

// busy answers an accept error: 429 over quota, 503 when the batcher stayed
// full or is shut down; both with Retry-After, and nothing was taken.
func busy(c *fiber.Ctx, err error) error {
	var q quotaError
	if errors.As(err, &q) {
		return q.d.Reject(c)
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(RetryAfterBusy.Seconds())))
	msg := "the server is busy; retry later"
	if errors.Is(err, ErrClosed) {
		msg = "the server is shutting down; retry later"
	}
	return fail(c, fiber.StatusServiceUnavailable, msg)
}
