package dashboard

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
)

// siteState is what the SQL of a site's queries depends on besides the
// query: where the Finalizer's tables stand.
type siteState struct {
	watermark time.Time
	multiday  map[uint32]bool
	openSince time.Time
}

// siteState reads the site's state. Requests for one site that arrive
// while it is read (the panels of a dashboard) share the read: ClickHouse
// would answer each of them the same.
func (e *Engine) siteState(ctx context.Context, s scope) (siteState, error) {
	ch := e.states.DoChan(s.site.String(), func() (any, error) {
		// The read is shared, so no one request's end cancels it.
		ctx, cancel := context.WithTimeout(e.ctx(context.WithoutCancel(ctx)), e.cfg.QueryTimeout)
		defer cancel()
		var (
			fs      *finalState
			markers []recentMarker
			st      siteState
			g       errgroup.Group
		)
		g.Go(func() (err error) {
			fs, err = readFinalState(ctx, e.db)
			return err
		})
		g.Go(func() (err error) {
			st.multiday, err = e.multidayMonths(ctx, s)
			return err
		})
		g.Go(func() (err error) {
			markers, err = e.recentMarkers(ctx)
			return err
		})
		if err := g.Wait(); err != nil {
			return st, queryError(err)
		}
		st.watermark = fs.watermark()
		st.openSince = recentCutoff(markers, st.watermark)
		return st, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return siteState{}, r.Err
		}
		return r.Val.(siteState), nil
	case <-ctx.Done():
		return siteState{}, fmt.Errorf("%w (reading the site's state)", ErrQueryTimeout)
	}
}

// multidayMonths are the site's months (YYYYMM) whose visitors
// rollup_days cannot sum over days (see rollupMultiday).
func (e *Engine) multidayMonths(ctx context.Context, s scope) (map[uint32]bool, error) {
	b := &sqlBuilder{scope: s, loc: time.UTC}
	rows, err := e.db.Query(ctx, "SELECT toYYYYMM(day) FROM rollup_days WHERE "+b.tenantSite()+" AND dim = "+b.bind(rollupMultiday)+" AND visitors > 0", b.args...)
	if err != nil {
		return nil, queryError(err)
	}
	defer rows.Close()
	out := map[uint32]bool{}
	for rows.Next() {
		var m uint32
		if err := rows.Scan(&m); err != nil {
			return nil, queryError(err)
		}
		out[m] = true
	}
	return out, rows.Err()
}

// recentMarker is a marker row of sessions_recent (Finalizer.writeRecent):
// the pass that wrote day's partition took in the visits that had ended
// before cutoff.
type recentMarker struct{ day, cutoff time.Time }

// recentMarkers reads sessions_recent's marker rows.
func (e *Engine) recentMarkers(ctx context.Context) ([]recentMarker, error) {
	b := &sqlBuilder{scope: recentMarkerScope, loc: time.UTC}
	rows, err := e.db.Query(ctx, "SELECT started_at, ended_at FROM sessions_recent WHERE "+b.tenantSite()+" AND session_id = 0", b.args...)
	if err != nil {
		return nil, queryError(err)
	}
	defer rows.Close()
	var out []recentMarker
	for rows.Next() {
		var m recentMarker
		if err := rows.Scan(&m.day, &m.cutoff); err != nil {
			return nil, queryError(err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// recentCutoff is the earliest cutoff of the passes that wrote
// sessions_recent's days since watermark, as their markers say: every
// visit of those days that sessions_recent does not hold has an event at
// or after it. The first day since watermark without a marker (as in the
// first minute of a UTC day) moves it back to that day's start; zero when
// the watermark's day has no marker (no pass has written sessions_recent
// for this watermark). An earlier cutoff than this is never
// wrong, only slower: a query may use it for as long as it runs.
func recentCutoff(markers []recentMarker, watermark time.Time) time.Time {
	if watermark.IsZero() {
		return time.Time{}
	}
	marked := map[int64]bool{}
	var cutoff time.Time
	for _, m := range markers {
		if m.day.Before(watermark) {
			continue
		}
		marked[m.day.Unix()] = true
		if cutoff.IsZero() || m.cutoff.Before(cutoff) {
			cutoff = m.cutoff
		}
	}
	if !marked[watermark.Unix()] {
		return time.Time{}
	}
	d := watermark
	for marked[d.Unix()] {
		d = d.Add(24 * time.Hour)
	}
	if d.Before(cutoff) {
		cutoff = d
	}
	return cutoff
}
