package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pulse-analytics/pulse/ingest"
)

// backfillFlushRows is the least number of rows one back-fill INSERT holds;
// inserts end at hour boundaries, so an interrupted back-fill leaves whole hours.
const backfillFlushRows = 20_000

// BackfillStats describes what a back-fill wrote.
type BackfillStats struct {
	Events, Visits int
	// Hours is how many hours were written, HoursPresent how many were
	// skipped because they held events already.
	Hours, HoursPresent int
}

// Backfill writes the site's visits that start in [from, until) straight
// into ClickHouse through ingest's writer (whose meter counts them in the
// tenant's usage), as the rows ingest would have stored. Each UTC day's visits are a function of the seed and the day alone,
// so they are the same at every start; hours that already hold events of the
// site (an earlier back-fill, or live traffic of an earlier run) are left out,
// which makes a restart write only what is missing. Events of the last visits
// that would happen at or after until are left out too: live traffic takes over.
func (d *Demo) Backfill(ctx context.Context, from, until time.Time) (BackfillStats, error) {
	var st BackfillStats
	from, until = from.UTC(), until.UTC()
	present, err := d.hoursWithEvents(ctx, from, until)
	if err != nil {
		return st, err
	}
	st.HoursPresent = len(present)
	g := newGenerator(d.cfg.Hostname, d.cfg.Seed, d.cfg.VisitsPerDay, true)
	o := owner{tenant: d.cfg.Tenant, site: d.cfg.Site}
	var (
		v     visit
		batch []ingest.Event
		hours = map[int64]bool{}
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := d.w.WriteEvents(ctx, batch); err != nil {
			return fmt.Errorf("demo: back-fill: %w", err)
		}
		st.Events += len(batch)
		batch = batch[:0]
		return nil
	}
	for dd := day(from); dd <= day(until.Add(-time.Nanosecond)); dd++ {
		r := rand.New(rand.NewPCG(d.cfg.Seed, uint64(dd)))
		g.pool = g.pool[:0] // returning visitors stay within their day, like visitor ids
		dayStart := time.Unix(dd*86400, 0).UTC()
		for m := range 24 * 60 {
			minute := dayStart.Add(time.Duration(m) * time.Minute)
			if !minute.Before(until) {
				break
			}
			rate, _, _ := g.rhythm.rate(minute.Add(30 * time.Second))
			for range poisson(r, rate*60) {
				// Every visit of the day is drawn, written or not, so the
				// day's visits do not depend on which hours are written.
				g.next(r, minute.Add(time.Duration(r.Int64N(int64(time.Minute)))), &v)
				hour := floorDiv(v.start.Unix(), 3600)
				if v.start.Before(from) || !v.start.Before(until) || present[hour] {
					continue
				}
				batch = g.rows(o, &v, until, batch)
				hours[hour] = true
				st.Visits++
			}
			if m%60 == 59 && len(batch) >= backfillFlushRows {
				if err := flush(); err != nil {
					return st, err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
	}
	if err := flush(); err != nil {
		return st, err
	}
	st.Hours = len(hours)
	return st, nil
}

// hoursWithEvents returns the UTC hours (as hours since the epoch) in
// [from, until) in which the site has events.
func (d *Demo) hoursWithEvents(ctx context.Context, from, until time.Time) (map[int64]bool, error) {
	rows, err := d.db.Query(ctx, `SELECT DISTINCT toUInt32(intDiv(toUInt32(ts), 3600)) FROM events
		WHERE tenant_id = toUUID(?) AND site_id = toUUID(?) AND ts >= toDateTime(?) AND ts < toDateTime(?)`,
		d.cfg.Tenant.String(), d.cfg.Site.String(), uint32(from.Unix()), uint32(until.Unix()))
	if err != nil {
		return nil, fmt.Errorf("demo: read the hours that hold events: %w", err)
	}
	defer rows.Close()
	present := map[int64]bool{}
	for rows.Next() {
		var h uint32
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("demo: read the hours that hold events: %w", err)
		}
		present[int64(h)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("demo: read the hours that hold events: %w", err)
	}
	return present, nil
}
