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
	prop_keys, prop_values, source, medium, channel, is_bot,
	group_id, previous_id, context, non_interactive)`

// insertColumns is the number of columns insertEvents names.
const insertColumns = 39

// insertBlockRows is how many rows of an insert the writer encodes before it
// sends them as one block of the INSERT. ClickHouse joins the blocks of an
// INSERT into one part (up to its min_insert_block_size_rows, 1,048,576), so
// the insert stays one part, and ClickHouse works on a block while the next is
// encoded. The batch's columns keep their memory from block to block, where a
// whole insert in one block grew every column from empty to its full size.
const insertBlockRows = 8192

// WriteEvents inserts events in one INSERT; it returns only after ClickHouse
// has committed them or failed.
func (w *Writer) WriteEvents(ctx context.Context, events []Event) error {
	return w.WriteChunks(ctx, [][]Event{events})
}

// WriteChunks inserts the events of every chunk, in order, in one INSERT; it
// returns only after ClickHouse has committed them or failed. The Batcher
// hands over the slices its Adds brought rather than one copy of them.
//
// Rows go straight into the batch's columns, each value as a pointer into
// its event: a value in an interface would cost an allocation per column and
// row, a pointer costs none. The two property arrays take a []*string of the
// row's length, boxed once per length (see propRows).
func (w *Writer) WriteChunks(ctx context.Context, chunks [][]Event) error {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	batch, err := w.conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return fmt.Errorf("ingest: prepare insert of %d events: %w", n, err)
	}
	cols := batch.Columns()
	if len(cols) != insertColumns {
		_ = batch.Abort()
		return fmt.Errorf("ingest: insert of %d events: the batch has %d columns, want %d", n, len(cols), insertColumns)
	}
	var keys, values propRows
	inBlock := 0
	for _, events := range chunks {
		for i := range events {
			if inBlock == insertBlockRows {
				if err := batch.Flush(); err != nil {
					_ = batch.Abort()
					return fmt.Errorf("ingest: insert %d events: send a block: %w", n, err)
				}
				inBlock = 0
			}
			inBlock++
			e := &events[i]
			bot, nonInteractive := boolByte(e.IsBot), boolByte(e.NonInteractive)
			row := [insertColumns]any{&e.TenantID, &e.SiteID, &e.ID, &e.Time, &e.ReceivedAt, &e.Type, &e.Name,
				&e.Hostname, &e.Pathname, &e.Query, &e.Title, &e.Referrer, &e.ReferrerHost,
				&e.UTMSource, &e.UTMMedium, &e.UTMCampaign, &e.UTMTerm, &e.UTMContent,
				&e.VisitorID, &e.SessionID, &e.UserID,
				&e.Device, &e.Browser, &e.BrowserVersion, &e.OS, &e.OSVersion, &e.Country, &e.Region, &e.City,
				keys.row(e.PropKeys), values.row(e.PropValues), &e.Source, &e.Medium, &e.Channel, bot,
				&e.GroupID, &e.PreviousID, &e.Context, nonInteractive}
			for c, v := range row {
				if err := cols[c].AppendRow(v); err != nil {
					_ = batch.Abort()
					return fmt.Errorf("ingest: append event %s: column %s: %w", e.ID, cols[c].Name(), err)
				}
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("ingest: insert %d events: %w", n, err)
	}
	return nil
}

// propRows hands an Array(String) column one row of strings without
// allocating: ptrs points at the row's strings, and boxed[n] is ptrs[:n]
// already in an interface, made once per length.
type propRows struct {
	ptrs  [MaxProps]*string
	boxed [MaxProps + 1]any
}

func (p *propRows) row(s []string) any {
	if len(s) > MaxProps {
		return s // not from the decoder: pay for the interface
	}
	for i := range s {
		p.ptrs[i] = &s[i]
	}
	if p.boxed[len(s)] == nil {
		p.boxed[len(s)] = p.ptrs[:len(s)]
	}
	return p.boxed[len(s)]
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
