package ingest

import (
	"net/netip"

	"github.com/google/uuid"
)

// hooks are the per-event steps every ingest path shares.
type hooks struct {
	enricher  Enricher
	publisher Publisher
	presence  Presence
	dropBots  bool
	m         *Metrics
}

func (c Config) hooks(m *Metrics) hooks {
	p := c.Publisher
	if p == nil {
		p = noPublisher{}
	}
	pr := c.Presence
	if pr == nil {
		pr = noPresence{}
	}
	return hooks{enricher: c.Enricher, publisher: p, presence: pr, dropBots: c.DropBots, m: m}
}

// enrich fills the derived fields of events, all sent by c, and returns
// those to keep: events[:n], in order.
func (h *hooks) enrich(events []Event, c Client) []Event {
	if h.enricher == nil || len(events) == 0 {
		return events
	}
	h.enricher.Enrich(events, c)
	if !h.dropBots {
		return events
	}
	kept := 0
	for i := range events {
		if events[i].IsBot {
			h.m.rejected.WithLabelValues("bot").Inc()
			continue
		}
		if kept != i {
			events[kept] = events[i]
		}
		kept++
	}
	clear(events[kept:])
	return events[:kept]
}

// publish hands events to the live view (see detachLive).
func (h *hooks) publish(site Site, conn uint64, events []Event) {
	if _, none := h.publisher.(noPublisher); none || len(events) == 0 {
		return
	}
	detachLive(events)
	h.publisher.Publish(site, conn, events)
}

// Publisher hands accepted events to the live stream. Publish is called on the
// connection's goroutine with events that are accepted but not yet committed,
// each event id once per node (within the dedup window); it must not block and
// must not keep the slice.
// conn is the tracker connection the events came over (as told to Presence),
// 0 for HTTP.
type Publisher interface {
	Publish(site Site, conn uint64, events []Event)
}

type noPublisher struct{}

func (noPublisher) Publish(Site, uint64, []Event) {}

// Presence hears of tracker connections opening, showing life and closing,
// for "online now". Calls come from the connection's goroutines and must not
// block.
type Presence interface {
	Connected(site uuid.UUID, conn uint64)
	Heartbeat(site uuid.UUID, conn uint64)
	Disconnected(site uuid.UUID, conn uint64)
}

type noPresence struct{}

func (noPresence) Connected(uuid.UUID, uint64)    {}
func (noPresence) Heartbeat(uuid.UUID, uint64)    {}
func (noPresence) Disconnected(uuid.UUID, uint64) {}

// Enricher fills the derived fields of valid events (visitor hash, device,
// geo, channel) from what is known about the client that sent them all.
// Events of one call share their site and received time.
type Enricher interface {
	Enrich(events []Event, c Client)
}

// Client is what the server knows about the sender of an event. IP is never
// logged or stored as such.
type Client struct {
	IP        netip.Addr
	UserAgent string
	// ServerSide is set when a server sent the event on the visitor's behalf
	// (Segment's libraries): an empty UserAgent then says nothing about the visitor.
	ServerSide bool
	// VisitorKey, when set, identifies the visitor instead of IP and user agent
	// (a server-side sender's anonymous or user id).
	VisitorKey string
}

// quotaAddr is the address whose daily event budget (auth.Store.AllowEvents)
// the client's events spend: its IP, or none for a server-side sender, which
// authenticates with a secret API key (the tenant's own backend) and passes
// each visitor's address in the events.
func (c Client) quotaAddr() netip.Addr {
	if c.ServerSide {
		return netip.Addr{}
	}
	return c.IP
}
