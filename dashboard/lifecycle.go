package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/chdb"
)

// Defaults and limits of the data lifecycle (retention, erasure, deletion).
const (
	// DefaultLifecycleInterval is how often the lifecycle job enforces
	// retention and deletes the data of deleted sites.
	DefaultLifecycleInterval = time.Hour
	// lifecycleStartDelay is how long the job waits after start before its
	// first pass, so that a restarting node does not add to its own startup.
	lifecycleStartDelay = time.Minute
	// lifecyclePassTimeout bounds one pass of the job.
	lifecyclePassTimeout = 10 * time.Minute
	// maxPredicatesPerMutation bounds the sites one retention mutation names
	// (about 150 bytes each), keeping the statement far below ClickHouse's
	// max_query_size of 256 KiB.
	maxPredicatesPerMutation = 500
	// maxSessionsPerMutation bounds the session ids bound into one erasure
	// mutation (at most 22 bytes each: 88 KiB).
	maxSessionsPerMutation = 4000
	// DefaultDeletionWait is how long an erasure or deletion request waits for
	// ClickHouse to finish before answering 202.
	DefaultDeletionWait = 10 * time.Second
	// MaxDeletionWait is the longest wait a request may ask for, well within
	// the 30 to 60 seconds after which proxies commonly give up.
	MaxDeletionWait = 25 * time.Second
	// mutationPoll is how often a waiting request reads system.mutations.
	mutationPoll = 200 * time.Millisecond
	// deletionTimeout bounds the ClickHouse statements of one erasure or
	// deletion request, the wait excluded.
	deletionTimeout = 20 * time.Second
	// maxUserIDLength is the longest user id an erasure accepts.
	maxUserIDLength = 1024
)

// LifecycleConfig configures a Lifecycle. cmd/pulse fills it from flags.
type LifecycleConfig struct {
	// Interval is the time between two passes of the job. Default
	// DefaultLifecycleInterval.
	Interval time.Duration
	// MaxRetentionDays caps every site's retention: a site that keeps data
	// forever (0) or longer keeps it this many days. 0: no cap.
	MaxRetentionDays uint32
	// Logger receives what the job did and its failures. Default slog.Default().
	Logger *slog.Logger
}

func (c *LifecycleConfig) withDefaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultLifecycleInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Lifecycle looks after stored events and visits: its job (Run) enforces
// each site's retention and deletes the data of deleted sites, and its HTTP
// API (Register) erases one visitor's or user's data and deletes a site's.
//
// `events`, `event_ids`, `engagement_events`, `sessions`, `sessions_final` and `rollup_days` are partitioned by calendar month
// (UTC) and shared by every tenant (`sessions_recent`, by day, holds two days and is
// trimmed by the Finalizer). A month is dropped whole when no live site keeps data that
// old; otherwise each site's older rows are deleted with a mutation (ALTER
// TABLE … DELETE), which ClickHouse applies in the background by rewriting
// the table's parts.
type Lifecycle struct {
	db    *chdb.DB
	sites *auth.Store
	cfg   LifecycleConfig
	log   *slog.Logger
	// enforce is one pass of the job; tests replace it to time the loop.
	enforce func(ctx context.Context, now time.Time) (LifecycleReport, error)
}

// NewLifecycle returns the lifecycle job and API over db, with the sites of store.
func NewLifecycle(db *chdb.DB, store *auth.Store, cfg LifecycleConfig) *Lifecycle {
	cfg.withDefaults()
	l := &Lifecycle{db: db, sites: store, cfg: cfg, log: cfg.Logger}
	l.enforce = l.Enforce
	return l
}

// Run enforces retention lifecycleStartDelay after it starts and then every
// Interval, until ctx ends; it returns nil then. A failed pass is logged and
// tried again at the next interval.
func (l *Lifecycle) Run(ctx context.Context) error {
	timer := time.NewTimer(lifecycleStartDelay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		passCtx, cancel := context.WithTimeout(ctx, lifecyclePassTimeout)
		rep, err := l.enforce(passCtx, time.Now())
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			l.log.Error("lifecycle: enforce retention", "err", err)
		case err == nil && !rep.empty():
			l.log.Info("lifecycle: deleting old data", "dropped_partitions", strings.Join(rep.Dropped, ","),
				"expired_sites", len(rep.Expired), "deleted_sites", len(rep.DeletedSites))
		}
		timer.Reset(l.cfg.Interval)
	}
}

// LifecycleReport says what one pass of the job started.
type LifecycleReport struct {
	// Dropped lists the partitions dropped, as "table/YYYYMM".
	Dropped []string
	// Expired lists the live sites whose rows older than their retention
	// are being deleted by a mutation.
	Expired []uuid.UUID
	// DeletedSites lists the deleted sites whose remaining rows are being
	// deleted by a mutation.
	DeletedSites []uuid.UUID
}

func (r LifecycleReport) empty() bool {
	return len(r.Dropped) == 0 && len(r.Expired) == 0 && len(r.DeletedSites) == 0
}

// lifecycleTables are the tables that hold a site's data, with the column
// their partitions and retention are read from.
var lifecycleTables = []struct{ name, dayColumn string }{
	{"events", "ts"},
	{"event_ids", "ts"},         // the stored events' keys, which ingest's writer looks up
	{"engagement_events", "ts"}, // a copy of the engagement events, which time_on_page reads
	{"sessions", "day"},
	{"sessions_final", "started_at"},
	{"rollup_days", "day"},
	{"sessions_recent", "started_at"},
}

// Enforce runs one pass of the job as of now:
//
//  1. drop every month partition of events and sessions that ends on or
//     before the oldest day any live site keeps (no partition is dropped
//     while a live site keeps data forever, or when there is no live site);
//  2. for each live site with a retention, when rows older than its first
//     kept day exist and no deletion of that site is under way, delete them;
//  3. likewise delete every row of a deleted site.
//
// The deletions of one pass go into one mutation per table (several for
// very many sites), because each mutation rewrites the table's parts.
func (l *Lifecycle) Enforce(ctx context.Context, now time.Time) (LifecycleReport, error) {
	var rep LifecycleReport
	var live []auth.Site
	for _, o := range l.sites.Orgs() {
		live = append(live, l.sites.Sites(o.ID)...)
	}
	cutoffs := make(map[uuid.UUID]time.Time, len(live))
	for _, s := range live {
		cutoffs[s.ID] = siteCutoff(now, s.TimeZone, effectiveRetention(s.RetentionDays, l.cfg.MaxRetentionDays))
	}

	if keep, ok := oldestKept(cutoffs); ok {
		for _, t := range lifecycleTables {
			dropped, err := l.dropMonthsBefore(ctx, t.name, keep)
			if err != nil {
				return rep, err
			}
			rep.Dropped = append(rep.Dropped, dropped...)
		}
	}

	for _, t := range lifecycleTables {
		pending, err := l.pendingCommands(ctx, t.name)
		if err != nil {
			return rep, err
		}
		var preds []predicate
		for _, s := range live {
			cut := cutoffs[s.ID]
			if cut.IsZero() || underWay(pending, s) {
				continue
			}
			p := sitePredicate(s)
			switch t.name {
			case "events", "event_ids", "engagement_events":
				p = p.and("ts < ?", cut.UTC())
			case "sessions_final", "sessions_recent":
				p = p.and("started_at < ?", cut.UTC())
			default:
				// A visit row holds one UTC day; the day the cutoff falls in
				// also holds kept events, so it stays.
				p = p.and("day < toDate(?)", cut.UTC().Format(time.DateOnly))
			}
			found, err := l.exists(ctx, t.name, p)
			if err != nil {
				return rep, err
			}
			if found {
				preds = append(preds, p)
				if !slices.Contains(rep.Expired, s.ID) {
					rep.Expired = append(rep.Expired, s.ID)
				}
			}
		}
		for _, s := range l.sites.DeletedSites() {
			if underWay(pending, s) {
				continue
			}
			p := sitePredicate(s)
			found, err := l.exists(ctx, t.name, p)
			if err != nil {
				return rep, err
			}
			if found {
				preds = append(preds, p)
				if !slices.Contains(rep.DeletedSites, s.ID) {
					rep.DeletedSites = append(rep.DeletedSites, s.ID)
				}
			}
		}
		for chunk := range slices.Chunk(preds, maxPredicatesPerMutation) {
			if err := l.deleteWhere(ctx, t.name, anyOf(chunk)); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// effectiveRetention is a site's retention in days under the operator's cap;
// 0 means forever.
func effectiveRetention(site, max uint32) uint32 {
	if max > 0 && (site == 0 || site > max) {
		return max
	}
	return site
}

// siteCutoff is the first instant a site keeps at now: midnight, in the
// site's time zone, days days before today. Today and the days before it
// are kept; events before the cutoff are expired. Zero when days is 0
// (kept forever). An unknown time zone counts as UTC.
func siteCutoff(now time.Time, timeZone string, days uint32) time.Time {
	if days == 0 {
		return time.Time{}
	}
	loc, err := time.LoadLocation(timeZone)
	if err != nil {
		loc = time.UTC
	}
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d-int(days), 0, 0, 0, 0, loc)
}

// oldestKept is the earliest cutoff among the live sites: everything before
// it is expired for every site. It is false when a site keeps data forever
// or there are no live sites (then nothing may be dropped).
func oldestKept(cutoffs map[uuid.UUID]time.Time) (time.Time, bool) {
	var oldest time.Time
	for _, c := range cutoffs {
		if c.IsZero() {
			return time.Time{}, false
		}
		if oldest.IsZero() || c.Before(oldest) {
			oldest = c
		}
	}
	return oldest, !oldest.IsZero()
}

// monthEnd is the end (exclusive) of the UTC month of partition YYYYMM.
func monthEnd(partition string) (time.Time, bool) {
	n, err := strconv.Atoi(partition)
	if err != nil || len(partition) != 6 {
		return time.Time{}, false
	}
	y, m := n/100, n%100
	if m < 1 || m > 12 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(m)+1, 1, 0, 0, 0, 0, time.UTC), true
}

// dropMonthsBefore drops the month partitions of table that end on or
// before keep, and returns them as "table/YYYYMM".
func (l *Lifecycle) dropMonthsBefore(ctx context.Context, table string, keep time.Time) ([]string, error) {
	parts, err := tablePartitions(ctx, l.db, table)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	var dropped []string
	for _, p := range parts {
		end, ok := monthEnd(p)
		if !ok || end.After(keep) {
			continue
		}
		id, _ := strconv.ParseUint(p, 10, 32)
		if err := l.db.Exec(ctx, "ALTER TABLE "+table+" DROP PARTITION ?", uint32(id)); err != nil {
			return dropped, fmt.Errorf("lifecycle: drop partition %s of %s: %w", p, table, err)
		}
		dropped = append(dropped, table+"/"+p)
	}
	return dropped, nil
}

// tablePartitions lists the partitions of table that have active parts, sorted.
func tablePartitions(ctx context.Context, db *chdb.DB, table string) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT partition FROM system.parts
		WHERE database = currentDatabase() AND table = ? AND active`, table)
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", table, err)
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("list partitions of %s: %w", table, err)
		}
		parts = append(parts, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", table, err)
	}
	slices.Sort(parts)
	return parts, nil
}

// predicate is a WHERE condition with its bound values.
type predicate struct {
	sql  string
	args []any
}

// sitePredicate selects the rows of one site; every statement of the
// lifecycle starts from it.
func sitePredicate(s auth.Site) predicate {
	return predicate{"tenant_id = toUUID(?) AND site_id = toUUID(?)", []any{s.OrgID.String(), s.ID.String()}}
}

func (p predicate) and(sql string, args ...any) predicate {
	return predicate{p.sql + " AND " + sql, append(slices.Clone(p.args), args...)}
}

// anyOf joins predicates with OR.
func anyOf(ps []predicate) predicate {
	var out predicate
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = "(" + p.sql + ")"
		out.args = append(out.args, p.args...)
	}
	out.sql = strings.Join(parts, " OR ")
	return out
}

// exists reports whether table holds a row matching p. The sort key starts
// with (tenant_id, site_id, day), so this reads a few granules at most.
func (l *Lifecycle) exists(ctx context.Context, table string, p predicate) (bool, error) {
	rows, err := l.db.Query(ctx, "SELECT 1 FROM "+table+" WHERE "+p.sql+" LIMIT 1", p.args...)
	if err != nil {
		return false, fmt.Errorf("lifecycle: look for rows in %s: %w", table, err)
	}
	defer rows.Close()
	found := rows.Next()
	return found, rows.Err()
}

// deleteWhere starts a mutation deleting the rows of table that match p.
func (l *Lifecycle) deleteWhere(ctx context.Context, table string, p predicate) error {
	if err := l.db.Exec(ctx, "ALTER TABLE "+table+" DELETE WHERE "+p.sql, p.args...); err != nil {
		return fmt.Errorf("lifecycle: delete from %s: %w", table, err)
	}
	return nil
}

// pendingCommands returns the commands of table's unfinished mutations.
func (l *Lifecycle) pendingCommands(ctx context.Context, table string) ([]string, error) {
	rows, err := l.db.Query(ctx, `SELECT command FROM system.mutations
		WHERE database = currentDatabase() AND table = ? AND is_done = 0`, table)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: read mutations of %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("lifecycle: read mutations of %s: %w", table, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// underWay reports whether one of the pending mutation commands names site,
// so the job does not start the same deletion again while one is running.
func underWay(pending []string, s auth.Site) bool {
	id := s.ID.String()
	for _, c := range pending {
		if strings.Contains(c, id) {
			return true
		}
	}
	return false
}
