package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// batchPreparer is the part of a ClickHouse connection the writer inserts through.
type batchPreparer interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// querier is the part of a ClickHouse connection the writer looks up stored
// events through.
type querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Writer inserts events into the ClickHouse events table.
type Writer struct {
	conn   batchPreparer
	lookup querier // nil: conn cannot answer queries, and WriteChunks fails
}

// NewWriter returns a Writer that inserts through conn. WriteChunks also
// queries through it, which a *chdb.DB can.
func NewWriter(conn batchPreparer) *Writer {
	q, _ := conn.(querier)
	return &Writer{conn: conn, lookup: q}
}

// insertEvents names every column: clickhouse-go needs the list on ClickHouse 18.16.
const insertEvents = `INSERT INTO events (tenant_id, site_id, event_id, ts, received_at, type, name,
	hostname, pathname, query, title, referrer, referrer_host,
	utm_source, utm_medium, utm_campaign, utm_term, utm_content,
	visitor_id, session_id, user_id,
	device, browser, browser_version, os, os_version, country, region, city,
	prop_keys, prop_values, source, medium, channel, is_bot)`

// insertColumns is the number of columns insertEvents names.
const insertColumns = 35

// insertBlockRows is how many rows of an insert the writer encodes before it
// sends them as one block of the INSERT. ClickHouse joins the blocks of an
// INSERT into one part (up to its min_insert_block_size_rows, 1,048,576), so
// the insert stays one part, and ClickHouse works on a block while the next is
// encoded. The batch's columns keep their memory from block to block, where a
// whole insert in one block grew every column from empty to its full size.
const insertBlockRows = 8192

// WriteEvents inserts events in one INSERT as they are, without looking for
// stored copies: for events known to be new (generated history). It returns
// only after ClickHouse has committed them or failed.
func (w *Writer) WriteEvents(ctx context.Context, events []Event) error {
	_, err := w.insert(ctx, [][]Event{events}, nil)
	return err
}

// WriteChunks inserts, in one INSERT, the events of every chunk that
// ClickHouse does not hold yet, and returns how many it inserted; it returns
// only after ClickHouse has committed them or failed. The Batcher hands over
// the slices its Adds brought rather than one copy of them.
//
// An event is stored once: one that event_ids already holds (same site, id
// and time; by UTC day for one whose time the server chose, in `events`),
// and a second copy within the chunks (same site, id and UTC day), are left
// out. A resend is thus a no-op: no second row and, above all, no second
// visit, since a resend is enriched again and may be given another session.
// Retrying after a failed insert is safe too: what the failed attempt did
// commit is found. Two inserts of one event that run at the same moment
// (two nodes) can still both store it; `events` then merges the rows.
func (w *Writer) WriteChunks(ctx context.Context, chunks [][]Event) (int, error) {
	skip, err := w.stored(ctx, chunks)
	if err != nil {
		return 0, err
	}
	return w.insert(ctx, chunks, skip)
}

// insert writes the events of chunks, but for those whose index (counted
// over all chunks) is set in skip, in one INSERT, and returns how many it
// wrote.
//
// Rows go straight into the batch's columns, each value as a pointer into
// its event: a value in an interface would cost an allocation per column and
// row, a pointer costs none. The two property arrays take a []*string of the
// row's length, boxed once per length (see propRows).
func (w *Writer) insert(ctx context.Context, chunks [][]Event, skip []bool) (int, error) {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	rows := n
	for _, s := range skip {
		if s {
			rows--
		}
	}
	if rows == 0 {
		return 0, nil
	}
	batch, err := w.conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return 0, fmt.Errorf("ingest: prepare insert of %d events: %w", rows, err)
	}
	cols := batch.Columns()
	if len(cols) != insertColumns {
		_ = batch.Abort()
		return 0, fmt.Errorf("ingest: insert of %d events: the batch has %d columns, want %d", rows, len(cols), insertColumns)
	}
	var keys, values propRows
	inBlock, at := 0, -1
	for _, events := range chunks {
		for i := range events {
			if at++; skip != nil && skip[at] {
				continue
			}
			if inBlock == insertBlockRows {
				if err := batch.Flush(); err != nil {
					_ = batch.Abort()
					return 0, fmt.Errorf("ingest: insert %d events: send a block: %w", rows, err)
				}
				inBlock = 0
			}
			inBlock++
			e := &events[i]
			bot := boolByte(e.IsBot)
			row := [insertColumns]any{&e.TenantID, &e.SiteID, &e.ID, &e.Time, &e.ReceivedAt, &e.Type, &e.Name,
				&e.Hostname, &e.Pathname, &e.Query, &e.Title, &e.Referrer, &e.ReferrerHost,
				&e.UTMSource, &e.UTMMedium, &e.UTMCampaign, &e.UTMTerm, &e.UTMContent,
				&e.VisitorID, &e.SessionID, &e.UserID,
				&e.Device, &e.Browser, &e.BrowserVersion, &e.OS, &e.OSVersion, &e.Country, &e.Region, &e.City,
				keys.row(e.PropKeys), values.row(e.PropValues), &e.Source, &e.Medium, &e.Channel, bot}
			for c, v := range row {
				if err := cols[c].AppendRow(v); err != nil {
					_ = batch.Abort()
					return 0, fmt.Errorf("ingest: append event %s: column %s: %w", e.ID, cols[c].Name(), err)
				}
			}
		}
	}
	if err := batch.Send(); err != nil {
		return 0, fmt.Errorf("ingest: insert %d events: %w", rows, err)
	}
	return rows, nil
}

// findStored finds the events of a block that event_ids holds already (same
// tenant, site, time and id; event_ids is sorted by time, so a block's ids
// are looked up in a few granules). The block's keys travel as an external
// table: tens of thousands of them would not fit in a query's text (at most
// max_query_size, 256 KiB), and as a table they are one compact block.
const findStored = `SELECT site_id, ts, event_id FROM event_ids
	WHERE (tenant_id, site_id, ts, event_id) IN (SELECT tenant_id, site_id, ts, event_id FROM block)`

// findStoredByDay finds events whose time the server chose, which a resend
// does not share, by UTC day and id in events itself (its sort key, which
// narrows the search to one granule per id).
const findStoredByDay = `SELECT site_id, toDate(ts), event_id FROM events
	WHERE (tenant_id, site_id, toDate(ts), event_id) IN (SELECT tenant_id, site_id, toDate(ts), event_id FROM block)`

// storedKey is one event of one site at one time: a Unix second, or a UTC
// day number.
type storedKey struct {
	site, id uuid.UUID
	at       int64
}

func dayNumber(t time.Time) int64 { return t.Unix() / (24 * 60 * 60) }

// stored returns, per event of chunks (counted over all chunks), whether to
// leave it out of the insert: ClickHouse holds it already, or it is a second
// copy within chunks.
func (w *Writer) stored(ctx context.Context, chunks [][]Event) ([]bool, error) {
	if w.lookup == nil {
		return nil, errors.New("ingest: look up stored events: the writer's connection cannot run queries")
	}
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	all, err := newKeyTable()
	if err != nil {
		return nil, err
	}
	var byDay *ext.Table
	for _, events := range chunks {
		for i := range events {
			e := &events[i]
			if err := all.Append(&e.TenantID, &e.SiteID, &e.Time, &e.ID); err != nil {
				return nil, fmt.Errorf("ingest: look up stored events: %w", err)
			}
			if !e.serverTime {
				continue
			}
			if byDay == nil {
				if byDay, err = newKeyTable(); err != nil {
					return nil, err
				}
			}
			if err := byDay.Append(&e.TenantID, &e.SiteID, &e.Time, &e.ID); err != nil {
				return nil, fmt.Errorf("ingest: look up stored events: %w", err)
			}
		}
	}
	exact, err := w.find(ctx, findStored, all, func(t time.Time) int64 { return t.Unix() })
	if err != nil {
		return nil, err
	}
	var days map[storedKey]bool
	if byDay != nil {
		if days, err = w.find(ctx, findStoredByDay, byDay, dayNumber); err != nil {
			return nil, err
		}
	}

	skip := make([]bool, n)
	copies := make(map[storedKey]bool, n)
	at := -1
	for _, events := range chunks {
		for i := range events {
			at++
			e := &events[i]
			k := storedKey{e.SiteID, e.ID, dayNumber(e.Time)}
			switch {
			case copies[k]:
				skip[at] = true
			case exact[storedKey{e.SiteID, e.ID, e.Time.Unix()}], e.serverTime && days[k]:
				skip[at], copies[k] = true, true
			default:
				copies[k] = true
			}
		}
	}
	return skip, nil
}

// newKeyTable returns an empty external table of event keys, named block.
func newKeyTable() (*ext.Table, error) {
	t, err := ext.NewTable("block", ext.Column("tenant_id", column.Type("UUID")), ext.Column("site_id", column.Type("UUID")),
		ext.Column("ts", column.Type("DateTime('UTC')")), ext.Column("event_id", column.Type("UUID")))
	if err != nil {
		return nil, fmt.Errorf("ingest: look up stored events: %w", err)
	}
	return t, nil
}

// find runs query, one of the lookups above, with keys as its table block,
// and returns the keys it found, their time turned into at by at.
func (w *Writer) find(ctx context.Context, query string, keys *ext.Table, at func(time.Time) int64) (map[storedKey]bool, error) {
	rows, err := w.lookup.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(keys)), query)
	if err != nil {
		return nil, fmt.Errorf("ingest: look up %d stored events: %w", keys.Block().Rows(), err)
	}
	defer rows.Close()
	found := map[storedKey]bool{}
	for rows.Next() {
		var (
			site, id uuid.UUID
			t        time.Time
		)
		if err := rows.Scan(&site, &t, &id); err != nil {
			return nil, fmt.Errorf("ingest: look up stored events: %w", err)
		}
		found[storedKey{site, id, at(t)}] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ingest: look up stored events: %w", err)
	}
	return found, nil
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
