package dashboard

import (
	"encoding/json"
	"fmt"
	"time"
)

// timeRange is a half-open interval [From, To) in a site's time zone.
type timeRange struct {
	From, To time.Time
	Loc      *time.Location
	// days is true when both ends are local midnights, so comparisons move
	// by calendar days (which keeps them right across DST changes).
	days bool
}

func midnight(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}

func dayRange(from, to time.Time) timeRange {
	return timeRange{From: from, To: to, Loc: from.Location(), days: true}
}

const datePresets = "today, yesterday, realtime, 7d, 28d, 30d, 90d, month, last_month, year, 12mo, all"

// parseDateRange reads date_range in loc at now. first returns the first day
// that has data, for "all".
func parseDateRange(raw json.RawMessage, loc *time.Location, now time.Time, first func() (time.Time, error)) (timeRange, error) {
	const field = "date_range"
	if len(raw) == 0 {
		return timeRange{}, fieldErr(field, "required: a preset (%s) or [from, to]", datePresets)
	}
	today := midnight(now, loc)
	tomorrow := today.AddDate(0, 0, 1)
	var preset string
	if err := json.Unmarshal(raw, &preset); err == nil {
		month := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, loc)
		switch preset {
		case "today":
			return dayRange(today, tomorrow), nil
		case "yesterday":
			return dayRange(today.AddDate(0, 0, -1), today), nil
		case "realtime":
			end := now.Truncate(time.Minute).Add(time.Minute)
			return timeRange{From: end.Add(-realtimeWindow), To: end, Loc: loc}, nil
		case "7d", "28d", "30d", "90d":
			var n int
			fmt.Sscanf(preset, "%dd", &n)
			return dayRange(tomorrow.AddDate(0, 0, -n), tomorrow), nil
		case "month":
			return dayRange(month, month.AddDate(0, 1, 0)), nil
		case "last_month":
			return dayRange(month.AddDate(0, -1, 0), month), nil
		case "year":
			y := time.Date(today.Year(), 1, 1, 0, 0, 0, 0, loc)
			return dayRange(y, y.AddDate(1, 0, 0)), nil
		case "12mo":
			return dayRange(month.AddDate(0, -11, 0), month.AddDate(0, 1, 0)), nil
		case "all":
			f, err := first()
			if err != nil {
				return timeRange{}, err
			}
			start := today
			if !f.IsZero() && f.Before(today) {
				start = midnight(f, loc)
			}
			return dayRange(start, tomorrow), nil
		}
		return timeRange{}, fieldErr(field, "unknown preset %q; known: %s, or [from, to]", preset, datePresets)
	}
	var pair []string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return timeRange{}, fieldErr(field, `must be a preset (%s) or ["YYYY-MM-DD", "YYYY-MM-DD"] or two RFC 3339 times`, datePresets)
	}
	d1, err1 := time.ParseInLocation(time.DateOnly, pair[0], loc)
	d2, err2 := time.ParseInLocation(time.DateOnly, pair[1], loc)
	if err1 == nil && err2 == nil {
		if d2.Before(d1) {
			return timeRange{}, fieldErr(field, "the last day %s is before the first %s", pair[1], pair[0])
		}
		if d2.Sub(d1) > 20*366*24*time.Hour {
			return timeRange{}, fieldErr(field, "at most 20 years")
		}
		return dayRange(d1, d2.AddDate(0, 0, 1)), nil
	}
	t1, err1 := time.Parse(time.RFC3339, pair[0])
	t2, err2 := time.Parse(time.RFC3339, pair[1])
	if err1 != nil || err2 != nil {
		return timeRange{}, fieldErr(field, `[from, to] must both be dates (YYYY-MM-DD) or both RFC 3339 times`)
	}
	if !t2.After(t1) {
		return timeRange{}, fieldErr(field, "the end %s is not after the start %s", pair[1], pair[0])
	}
	if t2.Sub(t1) > 20*366*24*time.Hour {
		return timeRange{}, fieldErr(field, "at most 20 years")
	}
	return timeRange{From: t1.In(loc), To: t2.In(loc), Loc: loc}, nil
}

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

// bucketStart is the start of the time bucket of grain that holds t, in loc,
// as ClickHouse's toStartOfMinute/toStartOfHour/toDate/toMonday/toStartOfMonth
// with the same time zone computes it.
func bucketStart(t time.Time, grain string, loc *time.Location) time.Time {
	t = t.In(loc)
	switch grain {
	case "minute":
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, loc)
	case "hour":
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
	case "day":
		return midnight(t, loc)
	case "week":
		d := midnight(t, loc)
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	default: // month
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	}
}

// nextBucket is the start of the bucket after the one starting at b.
func nextBucket(b time.Time, grain string) time.Time {
	switch grain {
	case "minute":
		return b.Add(time.Minute)
	case "hour":
		return b.Add(time.Hour)
	case "day":
		return b.AddDate(0, 0, 1)
	case "week":
		return b.AddDate(0, 0, 7)
	default:
		return b.AddDate(0, 1, 0)
	}
}

// bucketLabel is how a bucket is named in results: RFC 3339 with the site's
// offset for minutes and hours, a date for days, weeks and months.
func bucketLabel(b time.Time, grain string, loc *time.Location) string {
	if grain == "minute" || grain == "hour" {
		return b.In(loc).Format(time.RFC3339)
	}
	return b.In(loc).Format(time.DateOnly)
}

// buckets lists the buckets of grain that overlap r, or fails when there are
// more than MaxTimeBuckets.
func buckets(r timeRange, grain string) ([]time.Time, error) {
	var out []time.Time
	for b := bucketStart(r.From, grain, r.Loc); b.Before(r.To); b = nextBucket(b, grain) {
		if len(out) == MaxTimeBuckets {
			return nil, fieldErr("dimensions", "time:%s over this range has more than %d buckets; use a coarser time dimension or a shorter range", grain, MaxTimeBuckets)
		}
		out = append(out, b)
	}
	return out, nil
}
