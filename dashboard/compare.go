package dashboard

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"
)

// This file answers comparisons (docs/query-api.md, "Comparisons"): which
// range a query's range is compared with, whether the site's data covers
// it, and the change of each row.

// ComparisonMeta describes the comparison that was answered.
type ComparisonMeta struct {
	Mode string `json:"mode"`
	// DateRange is the comparison range actually queried: while the range
	// has not ended, the same part of the earlier period.
	DateRange [2]string `json:"date_range"`
	// ChangeUnavailable is why every change is null (changeNotCovered),
	// empty when changes are given.
	ChangeUnavailable string `json:"change_unavailable,omitempty"`
	// FirstData is the site's first counted event, with changeNotCovered
	// (empty when the site has none before the range's end).
	FirstData string `json:"first_data,omitempty"`
}

// changeNotCovered says that the site's first counted event is after the
// start of the comparison range: the earlier period is not covered by
// data, so a change against it would say nothing.
const changeNotCovered = "not_covered"

// comparison is how a query's range is compared with an earlier one
// (docs/query-api.md, "Comparisons"): like with like, so while the range
// has not ended only its elapsed part is compared, with the same part of
// the earlier period.
type comparison struct {
	mode string
	// cur is the query's range; r the comparison range actually queried.
	cur, r timeRange
	// until is the moment the current range is answered up to while it
	// has not ended (the query's now, to the second); zero once it has.
	until time.Time
}

// rangeUnit is what a range is counted in when it is moved back a period.
type rangeUnit int

const (
	unitDuration rangeUnit = iota // ends that are not both local midnights
	unitDays                      // local midnights: whole calendar days
	unitMonths                    // first days of months: whole calendar months
)

func (r timeRange) unit() rangeUnit {
	if !r.days {
		return unitDuration
	}
	if r.From.In(r.Loc).Day() == 1 && r.To.In(r.Loc).Day() == 1 {
		return unitMonths
	}
	return unitDays
}

// newComparison is the comparison of cur in mode (comparePrevious or
// compareYear) asked at now.
func newComparison(cur timeRange, mode string, now time.Time) comparison {
	c := comparison{mode: mode, cur: cur}
	end := cur.To
	if now = now.Truncate(time.Second); now.Before(cur.To) {
		c.until = now
		if now.Before(cur.From) {
			c.until = cur.From
		}
		end = c.until
	}
	from, _ := c.shift(cur.From)
	to, _ := c.shift(end)
	if last, _ := c.shift(cur.To); to.After(last) {
		to = last
	}
	if to.Before(from) {
		to = from
	}
	c.r = timeRange{From: from, To: to, Loc: cur.Loc}
	return c
}

// shift maps a moment of the current range to the same moment of the
// comparison period: a year earlier by the calendar and the clock; or
// the range's own length earlier, counted in calendar months (the same
// day of the month, and the month's end when it is shorter), calendar
// days (the same clock time) or, for ranges that are not whole days,
// seconds. exact is false when the earlier period has no such moment (a
// 31st, 29 February, an hour the clocks skipped): the answer is then the
// first moment after.
func (c comparison) shift(t time.Time) (_ time.Time, exact bool) {
	loc := c.cur.Loc
	t = t.In(loc)
	if c.mode == compareYear {
		at, exact := clockOn(time.Date(t.Year()-1, t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), t, loc)
		return at, exact && !(t.Month() == time.February && t.Day() == 29)
	}
	switch c.cur.unit() {
	case unitMonths:
		from := c.cur.From.In(loc)
		k := monthsBetween(from, c.cur.To.In(loc))
		month := time.Date(from.Year(), from.Month()+time.Month(monthsBetween(from, t)-k), 1, 0, 0, 0, 0, time.UTC)
		if t.Day() > daysIn(month) {
			next := month.AddDate(0, 1, 0)
			return time.Date(next.Year(), next.Month(), 1, 0, 0, 0, 0, loc), false
		}
		return clockOn(time.Date(month.Year(), month.Month(), t.Day(), 0, 0, 0, 0, time.UTC), t, loc)
	case unitDays:
		n := civilDays(c.cur.From.In(loc), c.cur.To.In(loc))
		return clockOn(time.Date(t.Year(), t.Month(), t.Day()-n, 0, 0, 0, 0, time.UTC), t, loc)
	}
	return t.Add(-c.cur.To.Sub(c.cur.From)), true
}

// clockOn is the first moment of the day date (its year, month and day
// in UTC) at which the clocks of loc show clock's time of day or later:
// across a DST change, a time of day the clocks skipped is the moment
// they jumped, and one they showed twice is its first showing. exact is
// false for a skipped time.
func clockOn(date, clock time.Time, loc *time.Location) (time.Time, bool) {
	h, m, s := clock.Clock()
	want := time.Date(date.Year(), date.Month(), date.Day(), h, m, s, 0, time.UTC)
	t := time.Date(date.Year(), date.Month(), date.Day(), h, m, s, 0, loc)
	shown := func(t time.Time) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	}
	start, end := t.ZoneBounds()
	switch got := shown(t); {
	case got.After(want): // skipped; t is on the later side of the jump
		return start, false
	case got.Before(want): // skipped; t is on the earlier side
		return end, false
	}
	if !start.IsZero() {
		// Shown twice when the zone before t's was ahead of it and t is
		// within that difference of the change.
		_, before := start.Add(-time.Second).Zone()
		_, offset := t.Zone()
		if earlier := t.Add(-time.Duration(before-offset) * time.Second); before > offset && earlier.Before(start) {
			return earlier, true
		}
	}
	return t, true
}

// monthsBetween is the number of month starts from a's month to b's.
func monthsBetween(a, b time.Time) int {
	return (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month())
}

// civilDays is the number of calendar days from a's date to b's.
func civilDays(a, b time.Time) int {
	da := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, time.UTC)
	db := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	return int(db.Sub(da) / (24 * time.Hour))
}

// daysIn is the number of days of the month of t (in UTC).
func daysIn(t time.Time) int {
	return time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// attachComparison gives each row the metrics of the same group in prev,
// over the comparison c, with every change left null when withhold is
// set. A time bucket of minutes or hours is matched with the bucket that
// holds the same moment of the earlier period (c.shift: the same clock
// time), a day, week or month with the bucket at the same position in
// c.r; a bucket with no such match (after the compared part of a range
// that has not ended, a 31st against a 30-day month, an hour the clocks
// skipped) has no comparison.
func (q *Query) attachComparison(rows, prev []*Row, c comparison, withhold bool) error {
	timeDim := slices.IndexFunc(q.dims, func(d dimension) bool { return d.kind == dimTime })
	byKey := map[string]*Row{}
	for _, p := range prev {
		byKey[strings.Join(p.Dimensions, "\x00")] = p
	}
	var grain string
	var cur, old []time.Time
	if timeDim >= 0 {
		var err error
		grain = q.dims[timeDim].grain
		if cur, err = buckets(q.r, grain); err != nil {
			return err
		}
		if c.r.From.Before(c.r.To) {
			if old, err = buckets(c.r, grain); err != nil {
				return err
			}
		}
	}
	for _, r := range rows {
		key := slices.Clone(r.Dimensions)
		if timeDim >= 0 {
			t, _ := parseBucket(key[timeDim], grain, q.loc)
			b, ok := c.bucket(t, grain, cur, old)
			if !ok {
				continue
			}
			key[timeDim] = rawBucket(b, grain)
		}
		pm := make([]float64, len(r.Metrics))
		if p, ok := byKey[strings.Join(key, "\x00")]; ok {
			pm = p.Metrics
		}
		r.Comparison = q.compare(r.Metrics, pm, withhold)
	}
	return nil
}

// bucket is the bucket of grain in the comparison range that the current
// bucket starting at t is compared with; cur and old are the buckets of
// c.cur and c.r.
func (c comparison) bucket(t time.Time, grain string, cur, old []time.Time) (time.Time, bool) {
	if grain == "minute" || grain == "hour" {
		at := t
		if at.Before(c.cur.From) {
			at = c.cur.From
		}
		if !c.until.IsZero() && !at.Before(c.until) {
			return time.Time{}, false
		}
		p, exact := c.shift(at)
		if !exact || p.Before(c.r.From) || !p.Before(c.r.To) {
			return time.Time{}, false
		}
		return bucketStart(p, grain, c.r.Loc), true
	}
	i := slices.IndexFunc(cur, func(b time.Time) bool { return b.Equal(t) })
	if i < 0 || i >= len(old) {
		return time.Time{}, false
	}
	return old[i], true
}

// compare is prev with the change from prev to cur of each metric; every
// change is null when withhold is set.
func (q *Query) compare(cur, prev []float64, withhold bool) *Comparison {
	c := &Comparison{Metrics: slices.Clone(prev), Change: make([]*float64, len(cur))}
	if withhold {
		return c
	}
	for i, m := range q.metrics {
		cr, pr := roundMetric(m, cur[i]), roundMetric(m, prev[i])
		var ch float64
		switch {
		case m.points():
			ch = cr - pr
		case pr == 0:
			continue
		default:
			ch = (cr - pr) / pr * 100
		}
		ch = math.Round(ch*10) / 10
		c.Change[i] = &ch
	}
	return c
}

// incompleteUntil labels the moment the query's range is answered up to
// while it has not ended; empty once it has.
func (q *Query) incompleteUntil() string {
	now := q.now.Truncate(time.Second)
	if !now.Before(q.r.To) {
		return ""
	}
	if now.Before(q.r.From) {
		now = q.r.From
	}
	return now.In(q.loc).Format(time.RFC3339)
}

// coverage reports whether the site has a counted event at or before
// start, the start of a comparison range; when it has not, first is its
// first counted event before end (zero when none). The first statement
// stops at the first row it finds; the second, run only when there is no
// such row, reads no more than the comparison and current ranges hold.
func (e *Engine) coverage(ctx context.Context, s scope, start, end time.Time) (covered bool, first time.Time, err error) {
	release, err := e.acquire(ctx)
	if err != nil {
		return false, time.Time{}, err
	}
	defer release()
	b := &sqlBuilder{scope: s, loc: time.UTC}
	var n uint64
	q := "SELECT count() FROM (SELECT 1 FROM events WHERE " + b.tenantSite() + " AND ts <= " + b.bindTime(start) + " AND is_bot = 0 LIMIT 1)"
	if err := e.db.QueryRow(e.ctx(ctx), q, b.args...).Scan(&n); err != nil {
		return false, time.Time{}, queryError(err)
	}
	if n > 0 {
		return true, time.Time{}, nil
	}
	b = &sqlBuilder{scope: s, loc: time.UTC}
	q = "SELECT min(ts), count() FROM events WHERE " + b.tenantSite() + " AND ts > " + b.bindTime(start) + " AND ts < " + b.bindTime(end) + " AND is_bot = 0"
	if err := e.db.QueryRow(e.ctx(ctx), q, b.args...).Scan(&first, &n); err != nil {
		return false, time.Time{}, queryError(err)
	}
	if n == 0 {
		return false, time.Time{}, nil
	}
	return false, first, nil
}
