package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

const (
	// MaxUsageSources is how many sources UsageSources lists: the largest,
	// which are where a quota goes.
	MaxUsageSources = 10
	// usageSourceSlack bounds how far an event's time lies before its
	// receipt (ingest's MaxEventAge, 7 days, and a day) or after it (none:
	// later times are replaced by the receipt).
	usageSourceSlack = 8 * 24 * time.Hour
)

// UsageSource is where some of an org's events of a month came from: a site
// and the host name its events named.
type UsageSource struct {
	SiteID   uuid.UUID `json:"site_id"`
	Hostname string    `json:"hostname"`
	// Events is the number of events stored from this source and received
	// in the month; BotEvents those of them flagged as bots.
	Events    uint64 `json:"events"`
	BotEvents uint64 `json:"bot_events"`
}

// UsageSources lists the MaxUsageSources largest sources of org's events
// received in the UTC month that holds now, so that an org near its quota
// sees what spends it (a site, a host name it did not expect, bots). It reads
// the stored events themselves: each stored copy of an event counts, and the
// writer leaves out copies it finds stored, so this agrees with the usage
// meter but for copies stored at the same moment by two nodes.
func (s *Store) UsageSources(ctx context.Context, org uuid.UUID, now time.Time) ([]UsageSource, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	from := monthStart(now.UTC())
	to := from.AddDate(0, 1, 0)
	// The ts bounds (usageSourceSlack) let ClickHouse skip the partitions
	// of other months.
	rows, err := s.db.Query(ctx, `SELECT site_id, hostname, count() AS events, countIf(is_bot = 1) AS bots FROM events
		WHERE tenant_id = ? AND ts >= ? AND ts < ? AND received_at >= ? AND received_at < ?
		GROUP BY site_id, hostname ORDER BY events DESC, site_id, hostname LIMIT ?`,
		org, from.Add(-usageSourceSlack), to.Add(usageSourceSlack), from, to, MaxUsageSources)
	if err != nil {
		return nil, fmt.Errorf("auth: read usage sources: %w", err)
	}
	defer rows.Close()
	out := []UsageSource{}
	for rows.Next() {
		var u UsageSource
		if err := rows.Scan(&u.SiteID, &u.Hostname, &u.Events, &u.BotEvents); err != nil {
			return nil, fmt.Errorf("auth: read usage sources: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
