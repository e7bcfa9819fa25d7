package dashboard

import (
	"fmt"
	"strings"
	"time"
)

// rollup_days (migration 0008) holds, per site, UTC day and value of each
// dimension, the day's visitors, visits, pageviews, events, bounces and
// visit seconds. A query part that it can answer reads it for the whole UTC
// days of its range before the watermark, and reads the rest (the partial
// days at either end, in the site's time zone, and the days after the
// watermark) from the visits and events as any other part does. The pieces
// are summed: visits, pageviews, events, bounces and seconds add up, and so
// do visitors, because a visitor id is derived with its UTC day's salt, so a
// visit's visitor is seen on one UTC day, and the pieces are cut at UTC
// midnights. Where that fails the sums are corrected or not used: months
// with a visitor id on several days (rollupMultiday) are read from the
// visits, and an event dimension's visitors seen on both sides of a
// midnight (a visit across it) are taken off once (carry, rollupOverlap).
//
// rollup_days holds every visit dimension, the event columns (event:page,
// event:name, event:hostname) and the empty dimension: the site's totals,
// which also answer time:day, time:week and time:month where the site's
// days are UTC days. The events metric counts events, not visits (the
// visits leave non-interactive custom events out), so without an event
// dimension it sums the day's event:name rows: every event has one name.

// rollupMultiday is the dim of rollup_days's rows that count, per site and
// month (day is the month's first), the visitor ids with visits that started
// on more than one UTC day. Where there are any, visitors do not add up over
// days, and parts with visitors over that month are read from the visits.
const rollupMultiday = "#multiday"

// rollupPlan says whether rollup_days can answer part p: which of its
// dimensions to read, the UTC days [from, to) to read it for, and which of
// rollupParts the metrics need.
func (b *sqlBuilder) rollupPlan(p partQuery) (dim string, from, to time.Time, need map[string]bool, ok bool) {
	if !b.rollup || b.watermark.IsZero() || len(p.filters) > 0 || len(p.dims) > 1 {
		return "", from, to, nil, false
	}
	for _, m := range p.metrics {
		switch m.kind {
		case mVisitors, mPageviews, mEvents:
		case mVisits, mViewsPerVisit, mBounceRate, mVisitDuration:
			if p.table != tableSessions {
				return "", from, to, nil, false
			}
		case mConversionRate:
			if p.table != tableEvents {
				return "", from, to, nil, false
			}
		default:
			return "", from, to, nil, false
		}
	}
	need = rollupNeeds(p.metrics)
	// allNames: an event part without an event dimension (events alone,
	// as visitors and pageviews read the visits here) sums the rows of
	// every event name, which add up to the day's events; visitors do not.
	allNames := p.table == tableEvents && (len(p.dims) == 0 || p.dims[0].kind == dimTime)
	if allNames {
		if need["x_v"] {
			return "", from, to, nil, false
		}
		dim = "event:name"
	}
	var grain string
	switch {
	case len(p.dims) == 0:
		if p.table != tableSessions && !allNames {
			return "", from, to, nil, false
		}
	case p.dims[0].kind == dimVisit && p.table == tableSessions:
		dim = p.dims[0].name
	case p.dims[0].kind == dimEvent && p.dims[0].prop == "" && p.table == tableEvents:
		dim = p.dims[0].name
	case p.dims[0].kind == dimTime && (p.table == tableSessions || allNames):
		grain = p.dims[0].grain
		if grain == "minute" || grain == "hour" {
			return "", from, to, nil, false
		}
	default:
		return "", from, to, nil, false
	}
	day := 24 * time.Hour
	from = p.r.From.UTC().Truncate(day)
	if from.Before(p.r.From) {
		from = from.Add(day)
	}
	to = p.r.To.UTC().Truncate(day)
	if w := b.watermark.UTC().Truncate(day); w.Before(to) {
		to = w
	}
	if !from.Before(to) {
		return "", from, to, nil, false
	}
	if need["x_v"] {
		// The months whose days are summed, the partial days at the ends
		// (read from the visits, but added to the sums) included.
		for m := p.r.From.UTC(); m.Before(to); m = time.Date(m.Year(), m.Month()+1, 1, 0, 0, 0, 0, time.UTC) {
			if b.multiday[uint32(m.Year()*100+int(m.Month()))] {
				return "", from, to, nil, false
			}
		}
	}
	if grain != "" {
		// A day's row goes to the bucket its UTC midnight falls in, so no
		// bucket may start within a UTC day of [from, to): true where the
		// site's time zone is UTC at every bucket start.
		starts, err := buckets(p.r, grain)
		if err != nil {
			return "", from, to, nil, false
		}
		for _, s := range starts {
			if s.After(from) && s.Before(to) && !s.UTC().Truncate(day).Equal(s) {
				return "", from, to, nil, false
			}
		}
	}
	return dim, from, to, need, true
}

// rollupParts are the additive parts every piece of a rollup query gives,
// in this order: visitors, visits, pageviews, events, bounces, seconds.
var rollupParts = []string{"x_v", "x_n", "x_pv", "x_ev", "x_b", "x_d"}

// rollupNeeds says which of rollupParts the metrics use.
func rollupNeeds(ms []metric) map[string]bool {
	need := map[string]bool{"x_n": true}
	for _, m := range ms {
		switch m.kind {
		case mVisitors, mConversionRate:
			need["x_v"] = true
		case mPageviews, mViewsPerVisit:
			need["x_pv"] = true
		case mEvents:
			need["x_ev"] = true
		case mBounceRate:
			need["x_b"] = true
		case mVisitDuration:
			need["x_d"] = true
		}
	}
	return need
}

func rollupMetricExpr(m metric) string {
	switch m.kind {
	case mVisitors, mConversionRate:
		return "toFloat64(sum(x_v))"
	case mVisits:
		return "toFloat64(sum(x_n))"
	case mPageviews:
		return "toFloat64(sum(x_pv))"
	case mEvents:
		return "toFloat64(sum(x_ev))"
	case mViewsPerVisit:
		return "if(sum(x_n) = 0, 0, sum(x_pv) / sum(x_n))"
	case mBounceRate:
		return "if(sum(x_n) = 0, 0, 100 * sum(x_b) / sum(x_n))"
	case mVisitDuration:
		return "if(sum(x_n) = 0, 0, sum(x_d) / sum(x_n))"
	}
	panic("dashboard: not a rollup metric: " + m.name)
}

// buildRollup writes part p as a sum of rollup_days over its whole UTC days
// before the watermark and of the visits or events of the rest of its range,
// with the columns build gives. ok is false when rollup_days cannot answer p.
func (b *sqlBuilder) buildRollup(p partQuery) (sql string, ok bool) {
	dim, from, to, need, ok := b.rollupPlan(p)
	if !ok {
		return "", false
	}
	key := ""
	if len(p.dims) == 1 {
		key = "k0, "
	}

	// The whole UTC days from rollup_days.
	const day = 24 * time.Hour
	var k string
	switch {
	case len(p.dims) == 0:
	case p.dims[0].kind == dimTime:
		k = b.bucketExpr("toDateTime(toUInt32(day) * 86400)", p.dims[0].grain) + " AS k0, "
	default:
		k = "value AS k0, "
	}
	// A day's carry (event dimensions) is its visitors seen the day before
	// too, counted already when that day is summed as well.
	cols := map[string]string{
		"x_v": "toInt64(visitors) - if(day > toDate(" + b.bind(from.Format(time.DateOnly)) + "), toInt64(carry), 0)",
		"x_n": "visits", "x_pv": "pageviews", "x_ev": "events", "x_b": "bounces", "x_d": "duration",
	}
	for x := range cols {
		if !need[x] {
			delete(cols, x)
		}
	}
	pieces := []string{"SELECT " + k + partsSelect(cols) + " FROM rollup_days WHERE " + b.tenantSite() +
		" AND dim = " + b.bind(dim) + " AND day >= toDate(" + b.bind(from.Format(time.DateOnly)) + ") AND day < toDate(" + b.bind(to.Format(time.DateOnly)) + ")"}

	// The rest of the range, read as any other part reads it.
	var rest []timeRange
	if p.r.From.Before(from) {
		rest = append(rest, timeRange{From: p.r.From, To: from, Loc: p.r.Loc})
	}
	if to.Before(p.r.To) {
		rest = append(rest, timeRange{From: to, To: p.r.To, Loc: p.r.Loc})
	}
	for _, r := range rest {
		pieces = append(pieces, b.rollupRest(p, r, need))
	}
	if p.table == tableEvents && need["x_v"] {
		// An event's visitor seen on both sides of a cut between rollup
		// days and the rest (a visit across midnight) counts once.
		if p.r.From.Before(from) {
			pieces = append(pieces, b.rollupOverlap(p, p.r.From, from, from.Add(day)))
		}
		if to.Before(p.r.To) {
			pieces = append(pieces, b.rollupOverlap(p, to.Add(-day), to, p.r.To))
		}
	}

	var out []string
	for i, m := range p.metrics {
		out = append(out, rollupMetricExpr(m)+" AS m"+fmt.Sprint(i))
	}
	if key != "" {
		out = append([]string{"k0 AS d0"}, out...)
	}
	return "SELECT " + strings.Join(out, ", ") + " FROM (" + strings.Join(pieces, " UNION ALL ") + ")" + b.groupTail(p), true
}

// rollupRest is the additive parts of p over r, from visits or events.
func (b *sqlBuilder) rollupRest(p partQuery, r timeRange, need map[string]bool) string {
	var k, group string
	exprs := map[string]string{}
	var from string
	switch p.table {
	case tableSessions:
		var cols []string
		if len(p.dims) == 1 {
			k = b.sessionDimExpr(p.dims[0]) + " AS k0, "
			group = " GROUP BY k0"
			cols = visitCols(p.dims, nil, true)
		}
		exprs["x_n"] = "count()"
		if need["x_v"] {
			cols = append(cols, "visitor_id")
			exprs["x_v"] = "toInt64(uniq(s_visitor_id))"
		}
		if need["x_pv"] || need["x_b"] {
			cols = append(cols, "pageviews")
			exprs["x_pv"] = "toUInt64(sum(s_pageviews))"
		}
		if need["x_b"] {
			cols = append(cols, "pageviews", "events")
			exprs["x_b"] = "countIf(s_pageviews = 1 AND s_events = 1)"
		}
		if need["x_d"] {
			cols = append(cols, "ended_at")
			exprs["x_d"] = "toUInt64(sum(toUInt32(s_ended_at) - toUInt32(s_started_at)))"
		}
		from = "(" + b.sessionsInner(r, cols, "s_") + ")"
	case tableEvents:
		if len(p.dims) == 1 {
			k = b.eventDimExpr(p.dims[0]) + " AS k0, "
			group = " GROUP BY k0"
		}
		exprs["x_n"] = "toUInt64(0)"
		if need["x_v"] {
			exprs["x_v"] = "toInt64(uniqIf(visitor_id, visitor_id != 0))"
		}
		if need["x_pv"] {
			exprs["x_pv"] = "toUInt64(uniqExactIf(event_id, type = 'page'))"
		}
		if need["x_ev"] {
			exprs["x_ev"] = "toUInt64(uniqExact(event_id))"
		}
		from = "events WHERE " + b.eventsWhere(r)
	}
	return "SELECT " + k + partsSelect(exprs) + " FROM " + from + group
}

// partsSelect is the select list of rollupParts, each from exprs or zero:
// visitors are Int64 (overlaps take some off), the other parts UInt64.
func partsSelect(exprs map[string]string) string {
	var sel []string
	for _, x := range rollupParts {
		e, ok := exprs[x]
		switch {
		case ok:
		case x == "x_v":
			e = "toInt64(0)"
		default:
			e = "toUInt64(0)"
		}
		sel = append(sel, e+" AS "+x)
	}
	return strings.Join(sel, ", ")
}

// rollupOverlap takes off, per value of p's event dimension, the visitors
// with such events both in [from, cut) and in [cut, to), which the pieces on
// either side of cut each counted.
func (b *sqlBuilder) rollupOverlap(p partQuery, from, cut, to time.Time) string {
	r := timeRange{From: from, To: to, Loc: p.r.Loc}
	// straddles keeps the groups with events on both sides of cut.
	straddles := func() string {
		c := b.bindTime(cut)
		return " HAVING min(ts) < " + c + " AND max(ts) >= " + c
	}
	// The few visitors with events on both sides are found first, as those
	// of the later side that are in the set of the earlier side's; only
	// their events are grouped by value.
	before := timeRange{From: from, To: cut, Loc: p.r.Loc}
	after := timeRange{From: cut, To: to, Loc: p.r.Loc}
	both := "SELECT visitor_id FROM events WHERE " + b.eventsWhere(after) + " AND visitor_id != 0 AND visitor_id IN (SELECT visitor_id FROM events WHERE " + b.eventsWhere(before) + " AND visitor_id != 0)"
	return "SELECT v AS k0, " + partsSelect(map[string]string{"x_v": "-toInt64(count())"}) + " FROM (SELECT " + b.eventDimExpr(p.dims[0]) + " AS v, visitor_id FROM events WHERE " +
		b.eventsWhere(r) + " AND visitor_id != 0 AND visitor_id IN (" + both + ")" +
		" GROUP BY v, visitor_id" + straddles() + ") GROUP BY k0"
}
