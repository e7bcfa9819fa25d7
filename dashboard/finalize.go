package dashboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"golang.org/x/sync/errgroup"
)

// Finalizer defaults.
const (
	// DefaultFinalizeInterval is how often the Finalizer looks for months
	// to (re)write. Until it has, queries merge a changed month's visits
	// from sessions (slower, never wrong).
	DefaultFinalizeInterval = time.Minute
	// finalizeLag is how far before the current UTC day the watermark
	// stays: a visit that started before it has had a whole day to end.
	finalizeLag = 24 * time.Hour
	// staleStageAge is when a staging table left by a stopped process is dropped.
	staleStageAge = 24 * time.Hour
	// watermarkMonth is the row of sessions_final_months that holds the
	// watermark of the last complete pass.
	watermarkMonth = 0
)

// sessionFinalColumns are the columns of sessions_final after the key.
var sessionFinalColumns = []string{"started_at", "ended_at", "visitor_id", "user_id", "pageviews", "events",
	"entry_page", "exit_page", "hostname", "referrer", "source", "medium", "channel",
	"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
	"country", "region", "city", "device", "browser", "browser_version", "os", "os_version"}

// FinalizerConfig configures the Finalizer. Zero fields take defaults.
type FinalizerConfig struct {
	// Interval is the time between passes (DefaultFinalizeInterval).
	Interval time.Duration
	// Logger receives a line per month written; nil discards.
	Logger *slog.Logger
}

// Finalizer keeps sessions_final, the plain copy of finished visits that
// queries scan instead of merging `sessions` per visit (see migration 0007).
type Finalizer struct {
	db  *chdb.DB
	cfg FinalizerConfig
	// id names this process's staging tables (see stages); stage,
	// rollupStage and recentStage are those of sessions_final, rollup_days
	// and sessions_recent.
	id                              string
	stage, rollupStage, recentStage string
}

// stagedTables are the tables the Finalizer writes through staging tables
// of the same shape, named <table>_stage_<12 hex digits>.
var stagedTables = []string{"sessions_final", "rollup_days", "sessions_recent"}

// stages pairs each of stagedTables with this process's staging table.
func (f *Finalizer) stages() [][2]string {
	var out [][2]string
	for _, t := range stagedTables {
		out = append(out, [2]string{t, t + "_stage_" + f.id})
	}
	return out
}

// NewFinalizer returns a Finalizer writing through db.
func NewFinalizer(db *chdb.DB, cfg FinalizerConfig) *Finalizer {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultFinalizeInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 6)
	rand.Read(b)
	f := &Finalizer{db: db, cfg: cfg, id: hex.EncodeToString(b)}
	st := f.stages()
	f.stage, f.rollupStage, f.recentStage = st[0][1], st[1][1], st[2][1]
	return f
}

// Run finalizes at once and then every Interval until ctx ends. A failed
// pass is logged and retried at the next interval.
func (f *Finalizer) Run(ctx context.Context) error {
	defer func() {
		// The staging tables are this process's own; leave nothing behind.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, st := range f.stages() {
			if err := f.db.Exec(ctx, "DROP TABLE IF EXISTS "+st[1]); err != nil {
				f.cfg.Logger.Warn("finalizer: drop staging table", "table", st[1], "err", err)
			}
		}
	}()
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := f.Pass(ctx); err != nil && ctx.Err() == nil {
			f.cfg.Logger.Error("finalizer pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// monthStatus is what is known of one month's visits in sessions_final.
type monthStatus struct {
	// start and through bound the visits the month holds: those that
	// started in [start, through), through being the watermark or the
	// month's end.
	start, through time.Time
	// current is true when sessions_final holds all of them as they are
	// now in sessions: the month was written through `through` and no part
	// of sessions that may hold its visits' rows is newer than that write.
	current bool
}

// daySpan is the days of sessions rows that visits started in [start,
// through) may have: from the day before (rows of a visit that started the
// month before, so that it is left out whole) to the day of through.
func daySpan(start, through time.Time) (first, last time.Time) {
	return start.AddDate(0, 0, -sessionDaySlack), through.Truncate(24 * time.Hour)
}

// finalState is what finalStatus is computed from: the records of
// sessions_final_months, when inserts last wrote each day (event_days,
// migration 0010), and the parts of sessions, sessions_final and
// rollup_days.
type finalState struct {
	// records holds each month's last record; month 0 (watermarkMonth)
	// holds the latest watermark.
	records map[uint32]finalRecord
	// inserted holds when inserts last wrote each UTC day.
	inserted map[time.Time]time.Time
	// mutated are the active parts of sessions that a mutation (an
	// erasure, a deletion) has rewritten; finals and rollups the
	// partitions of sessions_final and rollup_days.
	mutated         []finalPart
	finals, rollups map[string]bool
}

type finalRecord struct{ through, at time.Time }

type finalPart struct{ first, last, modified time.Time }

// readFinalState reads the records and the parts, at once.
func readFinalState(ctx context.Context, db *chdb.DB) (*finalState, error) {
	st := &finalState{records: map[uint32]finalRecord{}, inserted: map[time.Time]time.Time{}, finals: map[string]bool{}, rollups: map[string]bool{}}
	var g errgroup.Group
	g.Go(func() error {
		// The watermark is the latest one recorded (max), a month's
		// through that of its last write; of two writes in the same second
		// the smaller through, so that the month is rather written again
		// than taken for more complete than it is.
		rows, err := db.Query(ctx, "SELECT month, if(month = 0, max(through), argMax(through, (finalized_at, -toInt64(through)))), max(finalized_at) FROM sessions_final_months GROUP BY month")
		if err != nil {
			return fmt.Errorf("read finalized months: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var m uint32
			var r finalRecord
			if err := rows.Scan(&m, &r.through, &r.at); err != nil {
				return err
			}
			st.records[m] = r
		}
		return rows.Err()
	})
	g.Go(func() error {
		rows, err := db.Query(ctx, "SELECT day, maxMerge(inserted_at) FROM event_days GROUP BY day")
		if err != nil {
			return fmt.Errorf("read the days inserts wrote: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var day, at time.Time
			if err := rows.Scan(&day, &at); err != nil {
				return err
			}
			st.inserted[day] = at
		}
		return rows.Err()
	})
	g.Go(func() error {
		// A part of sessions whose data version is not its first block
		// was rewritten by a mutation; a month of sessions_final without
		// a partition in rollup_days (written before it existed) is not
		// current either.
		rows, err := db.Query(ctx, "SELECT table, partition, min_date, max_date, modification_time, data_version != min_block_number FROM system.parts WHERE database = currentDatabase() AND table IN ('sessions', 'sessions_final', 'rollup_days') AND active")
		if err != nil {
			return fmt.Errorf("read parts of sessions, sessions_final and rollup_days: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var table, partition string
			var p finalPart
			var mutated uint8
			if err := rows.Scan(&table, &partition, &p.first, &p.last, &p.modified, &mutated); err != nil {
				return err
			}
			switch table {
			case "sessions":
				if mutated == 1 {
					st.mutated = append(st.mutated, p)
				}
			case "sessions_final":
				st.finals[partition] = true
			default:
				st.rollups[partition] = true
			}
		}
		return rows.Err()
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return st, nil
}

// finalStatus says, for every month with visits that started before
// watermark, whether sessions_final is current for it.
func finalStatus(ctx context.Context, db *chdb.DB, watermark time.Time) (map[uint32]monthStatus, error) {
	st, err := readFinalState(ctx, db)
	if err != nil {
		return nil, err
	}
	return st.status(watermark), nil
}

// status is finalStatus of the state read.
func (s *finalState) status(watermark time.Time) map[uint32]monthStatus {
	unrolled := map[uint32]bool{}
	for p := range s.finals {
		if m, err := strconv.ParseUint(p, 10, 32); err == nil && !s.rollups[p] {
			unrolled[uint32(m)] = true
		}
	}

	months := map[uint32]bool{}
	for m := range s.records {
		if m != watermarkMonth {
			months[m] = true
		}
	}
	for d := range s.inserted {
		months[uint32(d.Year()*100+int(d.Month()))] = true
	}
	out := map[uint32]monthStatus{}
	for m := range months {
		start := time.Date(int(m/100), time.Month(m%100), 1, 0, 0, 0, 0, time.UTC)
		if !start.Before(watermark) {
			continue
		}
		through := start.AddDate(0, 1, 0)
		if watermark.Before(through) {
			through = watermark
		}
		first, last := daySpan(start, through)
		rec, written := s.records[m]
		st := monthStatus{start: start, through: through, current: true}
		if written && rec.through.Before(through) || unrolled[m] {
			st.current = false
		}
		// Changed since written: an insert wrote one of the days its
		// visits may have rows on, or a mutation rewrote a part with
		// such days. (A merge writes new parts of old rows: no change.)
		if !written {
			st.current = false
		}
		for d, at := range s.inserted {
			if !d.Before(first) && !d.After(last) && !at.Before(rec.at) {
				st.current = false
			}
		}
		for _, p := range s.mutated {
			if !p.last.Before(first) && !p.first.After(last) && !p.modified.Before(rec.at) {
				st.current = false
			}
		}
		out[m] = st
	}
	return out
}

// watermark is the time before which every visit is in sessions_final and
// current: the last pass's watermark, or the start of the first month that
// has changed since it was written (late events, a bulk load, an erasure),
// whose visits are then merged from sessions until the next pass. Zero when
// no pass has completed.
func (s *finalState) watermark() time.Time {
	rec, ok := s.records[watermarkMonth]
	if !ok {
		return time.Time{}
	}
	w := rec.through
	for _, st := range s.status(w) {
		if !st.current && st.start.Before(w) {
			w = st.start
		}
	}
	return w
}

// Pass writes every month with visits that started before the watermark
// for which sessions_final is not current, then records the watermark. It
// returns the months written (YYYYMM).
func (f *Finalizer) Pass(ctx context.Context) ([]uint32, error) {
	var serverNow time.Time
	if err := f.db.QueryRow(ctx, "SELECT now()").Scan(&serverNow); err != nil {
		return nil, fmt.Errorf("finalizer: read the server's clock: %w", err)
	}
	watermark := serverNow.UTC().Truncate(24 * time.Hour).Add(-finalizeLag)
	for _, st := range f.stages() {
		if err := f.db.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+st[1]+" AS "+st[0]); err != nil {
			return nil, fmt.Errorf("finalizer: create staging table of %s: %w", st[0], err)
		}
	}
	f.dropStaleStages(ctx, serverNow)
	status, err := finalStatus(ctx, f.db, watermark)
	if err != nil {
		return nil, fmt.Errorf("finalizer: %w", err)
	}
	var written []uint32
	for _, m := range slices.Sorted(maps.Keys(status)) {
		st := status[m]
		if st.current {
			continue
		}
		if err := f.writeMonth(ctx, m, st.start, st.through, serverNow); err != nil {
			return written, err
		}
		written = append(written, m)
	}
	if err := f.record(ctx, watermarkMonth, watermark, serverNow); err != nil {
		return written, err
	}
	return written, f.writeRecent(ctx, watermark, serverNow)
}

// recentSettle is how long after its last event a visit is taken as ended
// and copied into sessions_recent: the session timeout (30 minutes, package
// enrich) and a margin for events still on their way.
const recentSettle = 35 * time.Minute

// recentMarkerScope is the tenant and site of sessions_recent's marker
// rows: one per UTC day partition, whose started_at is the day and ended_at
// the cutoff of the pass that wrote the partition (its visits are those
// that had ended before it). No site has these ids, so no read of a site's
// visits sees them; queries read them to tell which visits are not in the
// table yet (Engine.recentCutoff).
var recentMarkerScope = scope{}

// writeRecent rewrites sessions_recent with the visits that started on or
// after watermark (a UTC midnight) and ended recentSettle before now, one
// UTC day partition at a time, each with its marker row, and drops the days
// before watermark.
func (f *Finalizer) writeRecent(ctx context.Context, watermark, now time.Time) error {
	day := 24 * time.Hour
	first, last := watermark.UTC().Truncate(day), now.UTC().Truncate(day)
	var days []uint32
	cutoff := uint32(now.Add(-recentSettle).Unix())
	// Every day gets its marker, so that every day's partition is there
	// and says which visits it holds.
	marker := "INSERT INTO " + f.recentStage + " (tenant_id, site_id, session_id, started_at, ended_at)" +
		" SELECT toUUID(?), toUUID(?), 0, toDateTime(?), toDateTime(?)"
	for d := first; !d.After(last); d = d.Add(day) {
		p := uint32(d.Year()*10000 + int(d.Month())*100 + d.Day())
		days = append(days, p)
		if err := f.db.Exec(ctx, "ALTER TABLE "+f.recentStage+" DROP PARTITION ?", p); err != nil {
			return fmt.Errorf("finalizer: clear recent staging day %d: %w", p, err)
		}
		if err := f.db.Exec(ctx, marker, recentMarkerScope.tenant.String(), recentMarkerScope.site.String(), uint32(d.Unix()), cutoff); err != nil {
			return fmt.Errorf("finalizer: mark recent day %d: %w", p, err)
		}
	}
	// Visits with rows on the day before first started before it; leaving
	// them out by id saves merging that day.
	insert := insertMergedVisits(f.recentStage,
		"day >= toDate(?) AND session_id NOT IN (SELECT session_id FROM sessions WHERE day = toDate(?))",
		"f_started_at >= toDateTime(?) AND f_ended_at < toDateTime(?)")
	if err := f.db.Exec(ctx, insert, first.Format(time.DateOnly), first.Add(-day).Format(time.DateOnly),
		uint32(first.Unix()), cutoff); err != nil {
		return fmt.Errorf("finalizer: merge recent visits: %w", err)
	}
	for _, d := range days {
		if err := f.db.Exec(ctx, "ALTER TABLE sessions_recent REPLACE PARTITION ? FROM "+f.recentStage, d); err != nil {
			return fmt.Errorf("finalizer: swap in recent day %d: %w", d, err)
		}
		if err := f.db.Exec(ctx, "ALTER TABLE "+f.recentStage+" DROP PARTITION ?", d); err != nil {
			return fmt.Errorf("finalizer: clear recent staging day %d: %w", d, err)
		}
	}
	parts, err := tablePartitions(ctx, f.db, "sessions_recent")
	if err != nil {
		return fmt.Errorf("finalizer: %w", err)
	}
	for _, p := range parts {
		if d, err := strconv.ParseUint(p, 10, 32); err == nil && uint32(d) < days[0] {
			if err := f.db.Exec(ctx, "ALTER TABLE sessions_recent DROP PARTITION ?", uint32(d)); err != nil {
				return fmt.Errorf("finalizer: drop recent day %d: %w", d, err)
			}
		}
	}
	return nil
}

// insertMergedVisits is an INSERT into table (shaped as sessions_final) of
// the visits merged from the rows of sessions that match where, keeping
// those whose merged columns (f_<column>) match having.
func insertMergedVisits(table, where, having string) string {
	var sel, fcols []string
	for _, c := range sessionFinalColumns {
		sel = append(sel, sessionMerge(c)+" AS f_"+c)
		fcols = append(fcols, "f_"+c)
	}
	return "INSERT INTO " + table + " (tenant_id, site_id, session_id, " + strings.Join(sessionFinalColumns, ", ") + ")" +
		" SELECT tenant_id, site_id, session_id, " + strings.Join(fcols, ", ") +
		" FROM (SELECT tenant_id, site_id, session_id, " + strings.Join(sel, ", ") +
		" FROM sessions WHERE " + where + " GROUP BY tenant_id, site_id, session_id HAVING " + having + ")"
}

// writeMonth merges the visits that started in [start, through) into the
// staging table and swaps the month's partition of sessions_final for it.
func (f *Finalizer) writeMonth(ctx context.Context, month uint32, start, through, began time.Time) error {
	insert := insertMergedVisits(f.stage, "day >= toDate(?) AND day <= toDate(?)", "f_started_at >= toDateTime(?) AND f_started_at < toDateTime(?)") +
		" SETTINGS max_bytes_before_external_group_by = 1000000000"
	if err := f.db.Exec(ctx, "ALTER TABLE "+f.stage+" DROP PARTITION ?", month); err != nil {
		return fmt.Errorf("finalizer: clear staging month %d: %w", month, err)
	}
	first, last := daySpan(start, through)
	if err := f.db.Exec(ctx, insert, first.Format(time.DateOnly), last.Format(time.DateOnly),
		uint32(start.Unix()), uint32(through.Unix())); err != nil {
		return fmt.Errorf("finalizer: merge visits of %d: %w", month, err)
	}
	var n uint64
	if err := f.db.QueryRow(ctx, "SELECT count() FROM "+f.stage+" WHERE toYYYYMM(started_at) = ?", month).Scan(&n); err != nil {
		return fmt.Errorf("finalizer: count visits of %d: %w", month, err)
	}
	sums, err := f.writeRollup(ctx, month, start, through)
	if err != nil {
		return err
	}
	// sessions_final first, then rollup_days: until the month is recorded
	// below, queries read it from sessions, so neither swap is seen alone.
	for _, t := range []struct {
		table, stage string
		rows         uint64
	}{{"sessions_final", f.stage, n}, {"rollup_days", f.rollupStage, sums}} {
		swap := "ALTER TABLE " + t.table + " REPLACE PARTITION ? FROM " + t.stage
		if t.rows == 0 {
			swap = "ALTER TABLE " + t.table + " DROP PARTITION ?"
		}
		if err := f.db.Exec(ctx, swap, month); err != nil {
			return fmt.Errorf("finalizer: swap in month %d of %s: %w", month, t.table, err)
		}
		if err := f.db.Exec(ctx, "ALTER TABLE "+t.stage+" DROP PARTITION ?", month); err != nil {
			return fmt.Errorf("finalizer: clear staging month %d: %w", month, err)
		}
	}
	f.cfg.Logger.Info("visits finalized", "month", month, "through", through, "visits", n, "rollup_rows", sums)
	return f.record(ctx, month, through, began)
}

// writeRollup sums the month's visits (from the staging table, which
// writeMonth has just filled, made of interactions) and its events (but
// engagement events, as the query API counts them) in [start, through) per site,
// UTC day and value of each dimension into the rollup staging table, and
// returns how many rows it holds.
func (f *Finalizer) writeRollup(ctx context.Context, month uint32, start, through time.Time) (uint64, error) {
	if err := f.db.Exec(ctx, "ALTER TABLE "+f.rollupStage+" DROP PARTITION ?", month); err != nil {
		return 0, fmt.Errorf("finalizer: clear rollup staging month %d: %w", month, err)
	}
	const into = " (tenant_id, site_id, dim, day, value, visitors, visits, pageviews, events, bounces, duration) "
	visits := func(value string) string {
		return "INSERT INTO " + f.rollupStage + into +
			"SELECT tenant_id, site_id, ? AS dim, toDate(started_at) AS day, " + value + " AS value, " +
			"uniqExact(visitor_id), count(), sum(pageviews), sum(events), countIf(pageviews = 1 AND events = 1), " +
			"toUInt64(sum(toUInt32(ended_at) - toUInt32(started_at))) FROM " + f.stage +
			" WHERE toYYYYMM(started_at) = ? GROUP BY tenant_id, site_id, day, value"
	}
	events := func(value string) string {
		return "INSERT INTO " + f.rollupStage + into +
			"SELECT tenant_id, site_id, ? AS dim, toDate(ts) AS day, " + value + " AS value, " +
			"uniqExactIf(visitor_id, visitor_id != 0), toUInt64(0), uniqExactIf(event_id, type = 'page'), uniqExact(event_id), toUInt64(0), toUInt64(0)" +
			" FROM events WHERE ts >= toDateTime(?) AND ts < toDateTime(?) AND is_bot = 0 AND NOT " + engagementSQL + " GROUP BY tenant_id, site_id, day, value" +
			" SETTINGS max_bytes_before_external_group_by = 1000000000"
	}
	if err := f.db.Exec(ctx, visits("''"), "", month); err != nil {
		return 0, fmt.Errorf("finalizer: sum the visits of %d: %w", month, err)
	}
	for _, name := range slices.Sorted(maps.Keys(visitDims)) {
		if err := f.db.Exec(ctx, visits(visitDims[name].col), name, month); err != nil {
			return 0, fmt.Errorf("finalizer: sum the visits of %d by %s: %w", month, name, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(eventDims)) {
		if err := f.db.Exec(ctx, events(eventDims[name]), name, uint32(start.Unix()), uint32(through.Unix())); err != nil {
			return 0, fmt.Errorf("finalizer: sum the events of %d by %s: %w", month, name, err)
		}
	}
	// An event's visitor seen on consecutive days (a visit across
	// midnight): per day and value, those also seen the day before.
	// Only visitor ids with events on two days are grouped by value.
	var dimArr []string
	for _, name := range slices.Sorted(maps.Keys(eventDims)) {
		dimArr = append(dimArr, "('"+name+"', "+eventDims[name]+")")
	}
	carry := "INSERT INTO " + f.rollupStage + " (tenant_id, site_id, dim, day, value, carry) " +
		"SELECT tenant_id, site_id, dim, d, value, count() FROM (" +
		"SELECT tenant_id, site_id, tupleElement(dv, 1) AS dim, tupleElement(dv, 2) AS value, visitor_id, groupUniqArray(toDate(ts)) AS days FROM events ARRAY JOIN [" + strings.Join(dimArr, ", ") + "] AS dv" +
		" WHERE ts >= toDateTime(?) AND ts < toDateTime(?) AND is_bot = 0 AND NOT " + engagementSQL + " AND visitor_id != 0 AND visitor_id IN (" +
		"SELECT visitor_id FROM events WHERE ts >= toDateTime(?) AND ts < toDateTime(?) AND is_bot = 0 AND NOT " + engagementSQL + " AND visitor_id != 0 GROUP BY visitor_id HAVING min(toDate(ts)) != max(toDate(ts)))" +
		" GROUP BY tenant_id, site_id, dim, value, visitor_id HAVING length(days) > 1" +
		") ARRAY JOIN days AS d WHERE has(days, d - 1) AND d >= toDate(?) GROUP BY tenant_id, site_id, dim, d, value" +
		" SETTINGS max_bytes_before_external_group_by = 1000000000"
	from := uint32(start.AddDate(0, 0, -1).Unix())
	if err := f.db.Exec(ctx, carry, from, uint32(through.Unix()), from, uint32(through.Unix()), start.Format(time.DateOnly)); err != nil {
		return 0, fmt.Errorf("finalizer: find event visitors of %d on two days: %w", month, err)
	}
	// Visitors add up over days only when no visitor id has visits that
	// started on two UTC days (ingest's ids change with the UTC day, but a
	// late delivery or an import can break that). Count, per site, the ids
	// of this month's visits that started on another day too, in any month:
	// queries do not sum visitors over a month with such ids.
	multiday := "INSERT INTO " + f.rollupStage + into +
		"SELECT tenant_id, site_id, '" + rollupMultiday + "', toDate(?), '', count(), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0) FROM (" +
		"SELECT tenant_id, site_id, visitor_id FROM (" +
		"SELECT tenant_id, site_id, visitor_id, toDate(started_at) AS d FROM sessions_final WHERE toYYYYMM(started_at) != ? AND visitor_id IN (SELECT visitor_id FROM " + f.stage + " WHERE toYYYYMM(started_at) = ?)" +
		" UNION ALL SELECT tenant_id, site_id, visitor_id, toDate(started_at) AS d FROM " + f.stage + " WHERE toYYYYMM(started_at) = ?)" +
		" GROUP BY tenant_id, site_id, visitor_id HAVING uniqExact(d) > 1) GROUP BY tenant_id, site_id"
	if err := f.db.Exec(ctx, multiday, start.Format(time.DateOnly), month, month, month); err != nil {
		return 0, fmt.Errorf("finalizer: find visitors of %d on several days: %w", month, err)
	}
	var n uint64
	if err := f.db.QueryRow(ctx, "SELECT count() FROM "+f.rollupStage+" WHERE toYYYYMM(day) = ?", month).Scan(&n); err != nil {
		return 0, fmt.Errorf("finalizer: count rollup rows of %d: %w", month, err)
	}
	return n, nil
}

func (f *Finalizer) record(ctx context.Context, month uint32, through, at time.Time) error {
	b, err := f.db.PrepareBatch(ctx, "INSERT INTO sessions_final_months (month, through, finalized_at)")
	if err != nil {
		return fmt.Errorf("finalizer: record month %d: %w", month, err)
	}
	if err := b.Append(month, through, at); err != nil {
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("finalizer: record month %d: %w", month, err)
	}
	return nil
}

// dropStaleStages drops staging tables that processes which stopped
// without cleaning up left behind.
func (f *Finalizer) dropStaleStages(ctx context.Context, now time.Time) {
	rows, err := f.db.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%\\_stage\\_%' AND metadata_modification_time < toDateTime(?)",
		uint32(now.Add(-staleStageAge).Unix()))
	if err != nil {
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil && stageName.MatchString(n) && !strings.HasSuffix(n, "_stage_"+f.id) {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		if err := f.db.Exec(ctx, "DROP TABLE IF EXISTS "+n); err != nil {
			f.cfg.Logger.Warn("finalizer: drop stale staging table", "table", n, "err", err)
		}
	}
}

// stageName is what NewFinalizer names staging tables.
var stageName = regexp.MustCompile(`^(` + strings.Join(stagedTables, "|") + `)_stage_[0-9a-f]{12}$`)
