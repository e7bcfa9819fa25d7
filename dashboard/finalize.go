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
	"strings"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
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
	db    *chdb.DB
	cfg   FinalizerConfig
	stage string
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
	return &Finalizer{db: db, cfg: cfg, stage: "sessions_final_stage_" + hex.EncodeToString(b)}
}

// Run finalizes at once and then every Interval until ctx ends. A failed
// pass is logged and retried at the next interval.
func (f *Finalizer) Run(ctx context.Context) error {
	defer func() {
		// The staging table is this process's own; leave nothing behind.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := f.db.Exec(ctx, "DROP TABLE IF EXISTS "+f.stage); err != nil {
			f.cfg.Logger.Warn("finalizer: drop staging table", "table", f.stage, "err", err)
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

// finalStatus says, for every month with visits that started before
// watermark, whether sessions_final is current for it.
func finalStatus(ctx context.Context, db *chdb.DB, watermark time.Time) (map[uint32]monthStatus, error) {
	type record struct{ through, at time.Time }
	records := map[uint32]record{}
	rows, err := db.Query(ctx, "SELECT month, argMax(through, finalized_at), max(finalized_at) FROM sessions_final_months WHERE month != 0 GROUP BY month")
	if err != nil {
		return nil, fmt.Errorf("read finalized months: %w", err)
	}
	for rows.Next() {
		var m uint32
		var r record
		if err := rows.Scan(&m, &r.through, &r.at); err != nil {
			rows.Close()
			return nil, err
		}
		records[m] = r
	}
	rows.Close()
	type part struct{ first, last, modified time.Time }
	var parts []part
	rows, err = db.Query(ctx, "SELECT min_date, max_date, modification_time FROM system.parts WHERE database = currentDatabase() AND table = 'sessions' AND active")
	if err != nil {
		return nil, fmt.Errorf("read parts of sessions: %w", err)
	}
	for rows.Next() {
		var p part
		if err := rows.Scan(&p.first, &p.last, &p.modified); err != nil {
			rows.Close()
			return nil, err
		}
		parts = append(parts, p)
	}
	rows.Close()

	months := map[uint32]bool{}
	for m := range records {
		months[m] = true
	}
	for _, p := range parts {
		for d := p.first; !d.After(p.last); d = time.Date(d.Year(), d.Month()+1, 1, 0, 0, 0, 0, time.UTC) {
			months[uint32(d.Year()*100+int(d.Month()))] = true
		}
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
		rec, written := records[m]
		st := monthStatus{start: start, through: through, current: true}
		if written && rec.through.Before(through) {
			st.current = false
		}
		for _, p := range parts {
			if p.last.Before(first) || p.first.After(last) {
				continue
			}
			if !written || !p.modified.Before(rec.at) {
				st.current = false
				break
			}
		}
		out[m] = st
	}
	return out, nil
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
	if err := f.db.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+f.stage+" AS sessions_final"); err != nil {
		return nil, fmt.Errorf("finalizer: create staging table: %w", err)
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
	return written, nil
}

// writeMonth merges the visits that started in [start, through) into the
// staging table and swaps the month's partition of sessions_final for it.
func (f *Finalizer) writeMonth(ctx context.Context, month uint32, start, through, began time.Time) error {
	var sel []string
	for _, c := range sessionFinalColumns {
		sel = append(sel, sessionMerge(c)+" AS f_"+c)
	}
	cols := "tenant_id, site_id, session_id, " + strings.Join(sessionFinalColumns, ", ")
	var fcols []string
	for _, c := range sessionFinalColumns {
		fcols = append(fcols, "f_"+c)
	}
	insert := "INSERT INTO " + f.stage + " (" + cols + ") SELECT tenant_id, site_id, session_id, " + strings.Join(fcols, ", ") +
		" FROM (SELECT tenant_id, site_id, session_id, " + strings.Join(sel, ", ") +
		" FROM sessions WHERE day >= toDate(?) AND day <= toDate(?) GROUP BY tenant_id, site_id, session_id" +
		" HAVING f_started_at >= toDateTime(?) AND f_started_at < toDateTime(?))" +
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
	swap := "ALTER TABLE sessions_final REPLACE PARTITION ? FROM " + f.stage
	if n == 0 {
		swap = "ALTER TABLE sessions_final DROP PARTITION ?"
	}
	if err := f.db.Exec(ctx, swap, month); err != nil {
		return fmt.Errorf("finalizer: swap in month %d: %w", month, err)
	}
	if err := f.db.Exec(ctx, "ALTER TABLE "+f.stage+" DROP PARTITION ?", month); err != nil {
		return fmt.Errorf("finalizer: clear staging month %d: %w", month, err)
	}
	f.cfg.Logger.Info("visits finalized", "month", month, "through", through, "visits", n)
	return f.record(ctx, month, through, began)
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
	rows, err := f.db.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'sessions\\_final\\_stage\\_%' AND metadata_modification_time < toDateTime(?)",
		uint32(now.Add(-staleStageAge).Unix()))
	if err != nil {
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil && n != f.stage && stageName.MatchString(n) {
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
var stageName = regexp.MustCompile(`^sessions_final_stage_[0-9a-f]{12}$`)

// watermark is the time before which every visit is in sessions_final and
// current: the last pass's watermark, or the start of the first month that
// has changed since it was written (late events, a bulk load, an erasure),
// whose visits are then merged from sessions until the next pass. Zero when
// no pass has completed.
func (e *Engine) watermark(ctx context.Context) (time.Time, error) {
	var (
		w time.Time
		n uint64
	)
	err := e.db.QueryRow(ctx, "SELECT max(through), count() FROM sessions_final_months WHERE month = 0").Scan(&w, &n)
	if err != nil {
		return time.Time{}, queryError(err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	status, err := finalStatus(ctx, e.db, w)
	if err != nil {
		return time.Time{}, queryError(err)
	}
	for _, st := range status {
		if !st.current && st.start.Before(w) {
			w = st.start
		}
	}
	return w, nil
}
