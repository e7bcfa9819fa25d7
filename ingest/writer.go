package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// usageMeter is told what each committed insert stored: events of a tenant
// received on one UTC day (day is its midnight), each stored event once.
// auth.Store meters the tenants' usage so.
type usageMeter interface {
	MeterStored(tenant uuid.UUID, day time.Time, events int)
}

// Writer inserts events into the ClickHouse events table.
type Writer struct {
	conn   batchPreparer
	lookup querier    // nil: conn cannot answer queries, and WriteChunks fails
	meter  usageMeter // nil: nobody is told what was stored

	mu sync.Mutex
	// unsure holds the looked-up events that an insert which failed had
	// sent: ClickHouse may have stored some of them, and nobody was told.
	// A later lookup that finds one stored tells the meter. Empty while
	// inserts succeed.
	unsure map[storedKey]bool
}

// NewWriter returns a Writer that inserts through conn. WriteChunks also
// queries through it, which a *chdb.DB can.
func NewWriter(conn batchPreparer) *Writer {
	q, _ := conn.(querier)
	return &Writer{conn: conn, lookup: q}
}

// WithMeter makes w tell m, after each committed insert, how many events it
// stored per tenant and UTC day of receipt: the events it wrote, not those
// it left out as stored already, and nothing of a failed insert. Call it
// before the first insert.
func (w *Writer) WithMeter(m usageMeter) *Writer {
	w.meter = m
	return w
}

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

// WriteEvents inserts events in one INSERT as they are, without looking for
// stored copies: for events known to be new (generated history). It returns
// only after ClickHouse has committed them or failed; the meter hears of
// them as of any insert.
func (w *Writer) WriteEvents(ctx context.Context, events []Event) error {
	_, err := w.insert(ctx, [][]Event{events}, nil)
	return err
}

// WriteChunks inserts, in one INSERT, the events of every chunk that
// ClickHouse does not hold yet, and returns how many it inserted; it returns
// only after ClickHouse has committed them or failed. The Batcher hands over
// the slices its Adds brought rather than one copy of them.
//
// An event with a session is stored once: one that event_ids already
// holds (same site, time and id) and a second copy within the chunks are
// left out (lookedUp says which events are looked for). A resend is thus a
// no-op: no second row and, above all, no second visit, since a resend is
// enriched again and may be given another session. Retrying after a failed
// insert is safe too: what the failed attempt did commit is found. Two
// inserts of one event that run at the same moment (two nodes) can still
// both store it.
//
// The meter (WithMeter) hears of the events inserted once ClickHouse has
// committed them. An insert that failed may still have stored some of its
// events (a timeout after the commit, a connection lost after a block); the
// retry finds them stored and leaves them out, and tells the meter of them
// then, so that they count once too.
func (w *Writer) WriteChunks(ctx context.Context, chunks [][]Event) (int, error) {
	skip, err := w.stored(ctx, chunks)
	if err != nil {
		return 0, err
	}
	n, err := w.insert(ctx, chunks, skip)
	if w.meter != nil && skip != nil {
		w.settleUnsure(chunks, skip, err == nil)
	}
	return n, err
}

// settleUnsure records the looked-up events an insert sent as unsure when
// it failed (ok false), and forgets them once it succeeded.
func (w *Writer) settleUnsure(chunks [][]Event, skip []bool, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok && len(w.unsure) == 0 {
		return
	}
	if !ok && w.unsure == nil {
		w.unsure = map[storedKey]bool{}
	}
	at := -1
	for _, events := range chunks {
		for i := range events {
			if at++; skip[at] || !lookedUp(&events[i]) {
				continue
			}
			if ok {
				delete(w.unsure, keyOf(&events[i]))
			} else {
				w.unsure[keyOf(&events[i])] = true
			}
		}
	}
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
	var (
		keys, values propRows
		tally        storedTally
	)
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
			if w.meter != nil {
				tally.add(e)
			}
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
					return 0, fmt.Errorf("ingest: append event %s: column %s: %w", e.ID, cols[c].Name(), err)
				}
			}
		}
	}
	if err := batch.Send(); err != nil {
		return 0, fmt.Errorf("ingest: insert %d events: %w", rows, err)
	}
	w.report(&tally)
	return rows, nil
}

// report tells the meter what t counted.
func (w *Writer) report(t *storedTally) {
	if w.meter == nil {
		return
	}
	for k, n := range t.done() {
		w.meter.MeterStored(k.tenant, time.Unix(k.day*secondsPerDay, 0).UTC(), n)
	}
}

const secondsPerDay = 24 * 60 * 60

// tallyKey is a tenant and a UTC day (days since 1970-01-01).
type tallyKey struct {
	tenant uuid.UUID
	day    int64
}

// storedTally counts the rows of an insert per tenant and UTC day of
// receipt. The events of one Add share both (one site, one receipt), so it
// compares each row with the one before and touches its map once per run of
// equal keys.
type storedTally struct {
	counts map[tallyKey]int
	last   tallyKey
	run    int
}

func (t *storedTally) add(e *Event) {
	sec := e.ReceivedAt.Unix()
	day := sec / secondsPerDay
	if sec%secondsPerDay < 0 {
		day-- // before 1970: round down, not towards zero
	}
	k := tallyKey{e.TenantID, day}
	if k != t.last {
		t.endRun()
		t.last = k
	}
	t.run++
}

func (t *storedTally) endRun() {
	if t.run == 0 {
		return
	}
	if t.counts == nil {
		t.counts = map[tallyKey]int{}
	}
	t.counts[t.last] += t.run
	t.run = 0
}

// done returns the counts of every row added.
func (t *storedTally) done() map[tallyKey]int {
	t.endRun()
	return t.counts
}

// findStored finds the events of a block that event_ids holds already. The
// block's event ids travel as an external table (block): 50,000 of them would
// not fit in a query's text (at most max_query_size, 256 KiB). A set of ids
// costs ClickHouse a third of a set of (tenant, site, time, id) tuples, so the
// query asks for the block's ids among its sites (an external table too) in
// the block's stretches of time (see timeRanges), which event_ids, sorted by
// site and time, finds in a few granules; the writer then keeps the rows that
// match an event of the block exactly.
const findStored = `SELECT site_id, ts, event_id FROM event_ids
	WHERE (tenant_id, site_id) IN (SELECT tenant_id, site_id FROM sites) AND (%s)
	AND event_id IN (SELECT event_id FROM block)`

// storedKey is one event of one site at one second.
type storedKey struct {
	site, id uuid.UUID
	at       int64 // Unix seconds
}

func keyOf(e *Event) storedKey { return storedKey{e.SiteID, e.ID, e.Time.Unix()} }

// lookedUp says whether the writer looks for e's stored copy. It does for
// the events with a session (and not a bot): a second copy of one of those,
// enriched again, can land in another session, so in another visit or page
// visit (time on page), which nothing would take back. A second copy of any
// other event only adds a row that `events` merges away and that no count
// of the query API sees twice (every count of events counts distinct event
// ids, and such events have no visitor); the meter hears of it again. It
// does not
// for an event whose time the server chose (it came without ts, or with one
// too far ahead): a resend of it gets another time, so its stored copy could
// only be found by UTC day, and `events`, sorted by random ids within a day,
// would be read whole for every block (docs/clickhouse.md).
func lookedUp(e *Event) bool {
	return e.SessionID != 0 && !e.IsBot && !e.serverTime
}

// stored returns, per event of chunks (counted over all chunks), whether to
// leave it out of the insert: ClickHouse holds it already, or it is a second
// copy within chunks (see lookedUp for which events are looked for).
func (w *Writer) stored(ctx context.Context, chunks [][]Event) ([]bool, error) {
	if w.lookup == nil {
		return nil, errors.New("ingest: look up stored events: the writer's connection cannot run queries")
	}
	n, count := 0, 0
	for _, events := range chunks {
		n += len(events)
		for i := range events {
			if lookedUp(&events[i]) {
				count++
			}
		}
	}
	if count == 0 {
		return nil, nil
	}
	keys := make([]storedKey, 0, count)
	tenantOf := map[uuid.UUID]uuid.UUID{}
	var last uuid.UUID
	for _, events := range chunks {
		for i := range events {
			if e := &events[i]; lookedUp(e) {
				keys = append(keys, keyOf(e))
				if e.SiteID != last {
					tenantOf[e.SiteID], last = e.TenantID, e.SiteID
				}
			}
		}
	}
	found, err := w.find(ctx, keys, tenantOf)
	if err != nil {
		return nil, err
	}
	skip := make([]bool, n)
	copies := make(map[storedKey]bool, count)
	var recovered storedTally // stored by a failed insert: see unsure
	w.mu.Lock()
	unsure := w.unsure
	at := -1
	for _, events := range chunks {
		for i := range events {
			at++
			if e := &events[i]; lookedUp(e) {
				k := keyOf(e)
				skip[at] = found[k] || copies[k]
				if found[k] && !copies[k] && unsure[k] {
					recovered.add(e)
					delete(unsure, k)
				}
				copies[k] = true
			}
		}
	}
	w.mu.Unlock()
	w.report(&recovered)
	return skip, nil
}

// find runs findStored for the events of keys and returns the keys it found.
func (w *Writer) find(ctx context.Context, keys []storedKey, tenantOf map[uuid.UUID]uuid.UUID) (map[storedKey]bool, error) {
	sites, err := ext.NewTable("sites", ext.Column("tenant_id", column.Type("UUID")), ext.Column("site_id", column.Type("UUID")))
	if err != nil {
		return nil, fmt.Errorf("ingest: look up stored events: %w", err)
	}
	for site, tenant := range tenantOf {
		if err := sites.Append(tenant, site); err != nil {
			return nil, fmt.Errorf("ingest: look up stored events: %w", err)
		}
	}
	ids := make([]uuid.UUID, len(keys))
	times := make([]int64, len(keys))
	for i := range keys {
		ids[i], times[i] = keys[i].id, keys[i].at
	}
	block, err := ext.NewTable("block", ext.Column("event_id", column.Type("UUID")))
	if err != nil {
		return nil, fmt.Errorf("ingest: look up stored events: %w", err)
	}
	if _, err := block.Block().Columns[0].Append(ids); err != nil {
		return nil, fmt.Errorf("ingest: look up stored events: %w", err)
	}
	ranges := timeRanges(times, lookupRangeGap, maxLookupRanges)
	cond := make([]string, len(ranges))
	args := make([]any, 0, 2*len(ranges))
	for i, r := range ranges {
		cond[i] = "ts BETWEEN toDateTime(?) AND toDateTime(?)"
		args = append(args, r[0], r[1])
	}
	query := fmt.Sprintf(findStored, strings.Join(cond, " OR "))
	rows, err := w.lookup.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(sites, block)), query, args...)
	if err != nil {
		return nil, fmt.Errorf("ingest: look up %d stored events: %w", len(keys), err)
	}
	defer rows.Close()
	found := map[storedKey]bool{}
	for rows.Next() {
		var k storedKey
		var t time.Time
		if err := rows.Scan(&k.site, &t, &k.id); err != nil {
			return nil, fmt.Errorf("ingest: look up stored events: %w", err)
		}
		k.at = t.Unix()
		found[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ingest: look up stored events: %w", err)
	}
	return found, nil
}

// Time ranges of a lookup (see timeRanges).
const (
	// lookupRangeGap: times at most this far apart share a range.
	lookupRangeGap = 10
	// maxLookupRanges bounds the ranges of one lookup, and so its text.
	maxLookupRanges = 64
)

// timeRanges covers times (Unix seconds) with at most max ranges [from, to]:
// times at most gap seconds apart share a range, and while there are more
// ranges than max, the two closest merge. A block's times (mostly the last
// seconds, a few backdated ones) are a range or a few; what a range covers
// beyond the block's times only costs the lookup rows to read.
func timeRanges(times []int64, gap int64, max int) [][2]int64 {
	ts := slices.Clone(times)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	var out [][2]int64
	for _, t := range ts {
		if n := len(out); n > 0 && t-out[n-1][1] <= gap {
			out[n-1][1] = t
			continue
		}
		out = append(out, [2]int64{t, t})
	}
	for len(out) > max {
		closest := 1
		for i := 2; i < len(out); i++ {
			if out[i][0]-out[i-1][1] < out[closest][0]-out[closest-1][1] {
				closest = i
			}
		}
		out[closest-1][1] = out[closest][1]
		out = slices.Delete(out, closest, closest+1)
	}
	return out
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
