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
		return inDateTime(dayRange(d1, d2.AddDate(0, 0, 1)))
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
	return inDateTime(timeRange{From: t1.In(loc), To: t2.In(loc), Loc: loc})
}

// inDateTime refuses a range ClickHouse's DateTime cannot hold (see
// MinQueryDate), rather than let it wrap into a silently wrong answer.
func inDateTime(r timeRange) (timeRange, error) {
	// A day's slack on each side: the bounds are days in any zone.
	lo, _ := time.Parse(time.DateOnly, MinQueryDate)
	hi, _ := time.Parse(time.DateOnly, MaxQueryDate)
	if r.From.Before(lo.AddDate(0, 0, -1)) || r.To.After(hi.AddDate(0, 0, 2)) {
		return timeRange{}, fieldErr("date_range", "dates are from %s to %s: ClickHouse's DateTime holds no others", MinQueryDate, MaxQueryDate)
	}
	return r, nil
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
