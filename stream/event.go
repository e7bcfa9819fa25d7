package stream

import (
	"time"

	"github.com/google/uuid"
)

// Event is what the live view needs of one accepted event. Ingest converts
// its own event into this (ingest imports stream, not the reverse) and hands
// a batch to Hub.Publish before the ClickHouse commit. Live windows place an
// event at the moment the hub receives it, not by the client's clock, so a
// resumed client's old events count as "now" (once, by id).
type Event struct {
	// ID is the event's identity; a resent id is counted once.
	ID uuid.UUID
	// Type is page, track, identify, screen, group or alias; page and screen
	// count as pageviews, track as a custom event.
	Type string
	// Name is the custom event's name (track).
	Name string
	// Pathname is the page's path (no query).
	Pathname string
	// Source is the traffic source (the referrer host or utm_source) and
	// Channel its channel ("Organic Search", "Direct"…).
	Source, Channel string
	// Country (ISO code), Browser and Device (desktop, mobile, tablet…).
	Country, Browser, Device string
	// VisitorID is the daily-salted visitor hash; SessionID the session.
	VisitorID, SessionID uint64
	// Conn is the tracker connection the event came over (the id given to
	// Hub.Connected); 0 means HTTP (POST /v1/events).
	Conn uint64
}

// isPageview reports whether e counts as a pageview.
func (e *Event) isPageview() bool { return e.Type == "page" || e.Type == "screen" }

// isCustom reports whether e is a custom event.
func (e *Event) isCustom() bool { return e.Type == "track" }

// isEngagement reports whether e is an engagement event: a tracker's report
// of the time a page was visible and how far it was scrolled (Pulse's full
// tracker's, or Plausible's), which is not an interaction.
func (e *Event) isEngagement() bool { return e.Type == "track" && e.Name == "engagement" }

// Message is what travels on the bus for one site: events, or presence
// changes of tracker connections.
type Message struct {
	Events   []Event
	Presence []Presence
}

// PresenceKind is what happened to a tracker connection.
type PresenceKind uint8

// Presence kinds.
const (
	Connected PresenceKind = iota + 1
	Heartbeat
	Disconnected
)

// Presence is one change of a tracker connection's liveness.
type Presence struct {
	Kind PresenceKind
	Conn uint64
	At   time.Time
}
