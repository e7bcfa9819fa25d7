// Package ingest receives tracker events, validates them, and batches them into
// ClickHouse without losing any.
package ingest

import (
	"time"

	"github.com/google/uuid"
)

// Event is one tracked event as it is stored: a row of the events table.
type Event struct {
	TenantID   uuid.UUID
	SiteID     uuid.UUID
	ID         uuid.UUID
	Time       time.Time // when it happened (client clock, clamped)
	ReceivedAt time.Time // when the server received it
	Type       string    // page, track, identify, screen, group or alias
	Name       string

	Hostname string
	Pathname string
	Query    string
	Title    string

	Referrer     string
	ReferrerHost string

	UTMSource   string
	UTMMedium   string
	UTMCampaign string
	UTMTerm     string
	UTMContent  string

	// Source, Medium and Channel say where the visit came from (enrichment).
	Source  string
	Medium  string
	Channel string
	// IsBot flags automation; bots are kept, flagged, and left out of visitor counts.
	IsBot bool

	VisitorID uint64
	SessionID uint64
	UserID    string

	Device         string
	Browser        string
	BrowserVersion string
	OS             string
	OSVersion      string
	Country        string
	Region         string
	City           string

	// PropKeys and PropValues are the event's properties, pairwise.
	PropKeys   []string
	PropValues []string

	// What the foreign formats carry beyond our own (docs/ingest-formats.md).
	// GroupID is the group (account) of a Segment group call, or the
	// context.groupId of another call.
	GroupID string
	// PreviousID is the previous id of a Segment alias call.
	PreviousID string
	// Context is the JSON text of a Segment message's context without ip and
	// userAgent, or the Plausible tracker's version ({"v": 36}); "" for ours.
	Context string
	// NonInteractive marks an event its sender declared not an interaction
	// (Plausible's "interactive": false).
	NonInteractive bool

	// serverTime says that Time is when the server received an event whose
	// id the client chose (it sent no ts, or one too far ahead): a resend of
	// it gets another Time, so the writer cannot look up its stored copy by
	// time (see lookedUp).
	serverTime bool
}

// Site is what ingest needs to know about the site events are sent for.
type Site struct {
	TenantID  uuid.UUID
	ID        uuid.UUID
	PublicKey string
	// AllowedOrigins may send events from browsers (CORS of the HTTP endpoints).
	AllowedOrigins []string
	// HonorDNT drops events of requests that carry DNT: 1.
	HonorDNT bool
}

// eventOverhead approximates the fixed memory of one Event: the struct itself
// (string and slice headers, ids, times, numbers).
const eventOverhead = 600

// size approximates the bytes of memory e holds, for the batcher's bound.
func (e *Event) size() int {
	n := eventOverhead + len(e.Type) + len(e.Name) + len(e.Hostname) + len(e.Pathname) + len(e.Query) +
		len(e.Title) + len(e.Referrer) + len(e.ReferrerHost) + len(e.UTMSource) + len(e.UTMMedium) +
		len(e.UTMCampaign) + len(e.UTMTerm) + len(e.UTMContent) + len(e.UserID) + len(e.Device) +
		len(e.Browser) + len(e.BrowserVersion) + len(e.OS) + len(e.OSVersion) + len(e.Country) +
		len(e.Region) + len(e.City) + len(e.GroupID) + len(e.PreviousID) + len(e.Context)
	for i := range e.PropKeys {
		n += 16 + len(e.PropKeys[i])
	}
	for i := range e.PropValues {
		n += 16 + len(e.PropValues[i])
	}
	return n
}
