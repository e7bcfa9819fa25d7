package ingest

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// batchPreparer is the part of a ClickHouse connection the writer uses.
type batchPreparer interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// Writer inserts events into the ClickHouse events table.
type Writer struct {
	conn batchPreparer
}

// NewWriter returns a Writer that inserts through conn.
func NewWriter(conn batchPreparer) *Writer { return &Writer{conn: conn} }

// insertEvents names every column: clickhouse-go needs the list on ClickHouse 18.16.
const insertEvents = `INSERT INTO events (tenant_id, site_id, event_id, ts, received_at, type, name,
	hostname, pathname, query, title, referrer, referrer_host,
	utm_source, utm_medium, utm_campaign, utm_term, utm_content,
	visitor_id, session_id, user_id,
	device, browser, browser_version, os, os_version, country, region, city,
	prop_keys, prop_values, source, medium, channel, is_bot)`

// WriteEvents inserts events as one block; it returns only after ClickHouse
// has committed them or failed.
func (w *Writer) WriteEvents(ctx context.Context, events []Event) error {
	batch, err := w.conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return fmt.Errorf("ingest: prepare insert of %d events: %w", len(events), err)
	}
	for i := range events {
		e := &events[i]
		err := batch.Append(e.TenantID, e.SiteID, e.ID, e.Time, e.ReceivedAt, e.Type, e.Name,
			e.Hostname, e.Pathname, e.Query, e.Title, e.Referrer, e.ReferrerHost,
			e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMTerm, e.UTMContent,
			e.VisitorID, e.SessionID, e.UserID,
			e.Device, e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Country, e.Region, e.City,
			e.PropKeys, e.PropValues, e.Source, e.Medium, e.Channel, boolByte(e.IsBot))
		if err != nil {
			batch.Abort()
			return fmt.Errorf("ingest: append event %s: %w", e.ID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("ingest: insert %d events: %w", len(events), err)
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
