package dashboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
)

// Finalizer defaults.
const (
	// DefaultFinalizeInterval is how often the Finalizer looks for months
	// to (re)write.
	DefaultFinalizeInterval = 5 * time.Minute
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

// monthState is what sessions_final_months says of one month.
type monthState struct {
	through, finalizedAt time.Time
}

// Pass writes every month that has visits starting before the watermark
// and is missing, behind the watermark, or has changed in `sessions` since
// it was written; then it records the watermark. It returns the months
// written (YYYYMM).
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

	states := map[uint32]monthState{}
	rows, err := f.db.Query(ctx, "SELECT month, argMax(through, finalized_at), max(finalized_at) FROM sessions_final_months WHERE month != 0 GROUP BY month")
	if err != nil {
		return nil, fmt.Errorf("finalizer: read months: %w", err)
	}
	for rows.Next() {
		var m uint32
		var st monthState
		if err := rows.Scan(&m, &st.through, &st.finalizedAt); err != nil {
			rows.Close()
			return nil, err
		}
		states[m] = st
	}
	rows.Close()

	// Months with visits: from the days of sessions, and those already written.
	months := map[uint32]bool{}
	rows, err = f.db.Query(ctx, "SELECT DISTINCT toYYYYMM(day) FROM sessions WHERE day < toDate(?)", watermark.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("finalizer: list months: %w", err)
	}
	for rows.Next() {
		var m uint32
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return nil, err
		}
		months[m] = true
	}
	rows.Close()
	for m := range states {
		months[m] = true
	}

	var written []uint32
	for m := range months {
		start := time.Date(int(m/100), time.Month(m%100), 1, 0, 0, 0, 0, time.UTC)
		if !start.Before(watermark) {
			continue
		}
		through := start.AddDate(0, 1, 0)
		if watermark.Before(through) {
			through = watermark
		}
		st, ok := states[m]
		if ok && !st.through.Before(through) {
			changed, err := f.changedSince(ctx, start, through, st.finalizedAt)
			if err != nil {
				return written, err
			}
			if !changed {
				continue
			}
		}
		if err := f.writeMonth(ctx, m, start, through, serverNow); err != nil {
			return written, err
		}
		written = append(written, m)
	}
	if err := f.record(ctx, watermarkMonth, watermark, serverNow); err != nil {
		return written, err
	}
	return written, nil
}

// changedSince reports whether `sessions` has a part written after t that
// holds days a month's visits (starting in [start, through)) may have rows
// in. Merges make such parts too, which only costs a needless rewrite.
func (f *Finalizer) changedSince(ctx context.Context, start, through, t time.Time) (bool, error) {
	var n uint64
	err := f.db.QueryRow(ctx, `SELECT count() FROM system.parts
		WHERE database = currentDatabase() AND table = 'sessions' AND active
		AND modification_time >= ? AND max_date >= toDate(?) AND min_date <= toDate(?)`,
		uint32(t.Unix()), start.AddDate(0, 0, -sessionDaySlack).Format(time.DateOnly), through.AddDate(0, 0, sessionDaySlack).Format(time.DateOnly)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("finalizer: read parts of sessions: %w", err)
	}
	return n > 0, nil
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
	if err := f.db.Exec(ctx, insert,
		start.AddDate(0, 0, -sessionDaySlack).Format(time.DateOnly), through.AddDate(0, 0, sessionDaySlack).Format(time.DateOnly),
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

// watermark is the time before which every visit is in sessions_final;
// zero when no pass has completed.
func (e *Engine) watermark(ctx context.Context) (time.Time, error) {
	var (
		t time.Time
		n uint64
	)
	err := e.db.QueryRow(ctx, "SELECT max(through), count() FROM sessions_final_months WHERE month = 0").Scan(&t, &n)
	if err != nil {
		return time.Time{}, queryError(err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return t, nil
}
