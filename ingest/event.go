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
}

// Site is what ingest needs to know about the site events are sent for.
type Site struct {
	TenantID  uuid.UUID
	ID        uuid.UUID
	PublicKey string
}
