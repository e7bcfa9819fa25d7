package dashboard

import (
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
)

// This file is the one place that writes query SQL.
//
// Events are read without FINAL: a resent event may be stored twice until
// ReplacingMergeTree merges its copies, so every event metric is one that a
// second copy cannot change (uniq of visitors, uniqExact of event ids, sums
// over distinct (event id, value) pairs). FINAL would do the same but costs
// time in proportion to the number of unmerged parts, which is large right
// after a burst of inserts. Identifiers come only
// from the allow-lists in spec.go; every value (tenant, site, times, filter
// values, property keys, time zone) is a bound parameter; and every read of
// events, engagement_events or sessions goes through eventsWhere,
// engagementWhere or sessionsInner, which always put the tenant and site
// predicate first.

// table is where a query part reads its rows.
type table int

const (
	// tableEvents is the events but engagement events (eventsWhere), one
	// row per stored copy of an event; a filter on an event: dimension
	// holds for the event itself.
	tableEvents table = iota
	// tableVisitEvents is the same events, but filters on event:name
	// and event:props:<key> hold for the events of the visits with a
	// matching event (filters on event:page and event:hostname still hold
	// for the event itself).
	tableVisitEvents
	// tableSessions is one row per visit (sessions, merged per session_id);
	// a filter on an event: dimension holds for the visits with a
	// matching event.
	tableSessions
	// tableEngagement is the engagement events (engagement_events),
	// grouped into page visits (engagedPages); filters hold as for
	// tableVisitEvents.
	tableEngagement
)

// Engagement events are the trackers' reports of a page being left or
// hidden: Pulse's full tracker's `engagement` (props ms and scroll) and
// Plausible's (stored in the same shape). No metric but time_on_page and
// scroll_depth counts them. Non-interactive events (non_interactive = 1,
// Plausible's "interactive": false) are custom events like any other, but
// neither they nor engagement events are interactions: visits are made of
// the other events (the sessions view leaves both out, migration 0012).
// time_on_page and scroll_depth read them from engagement_events, a copy
// of them alone that a view keeps from every insert (migration 0014).
const (
	// engagementSQL holds for an engagement event (the condition of the
	// engagement_events view).
	engagementSQL = "(type = 'track' AND name = 'engagement')"
	// interactionSQL holds for an interaction, an event that is part of a
	// visit: it ends a bounce and extends the visit. The sessions view of
	// migration 0012 holds the same condition (TestSessionsViewMakesVisitsOfInteractions).
	interactionSQL = "NOT " + engagementSQL + " AND non_interactive = 0"
	// engagementName is their event name, which no funnel step or goal may use.
	engagementName = "engagement"
	// engagementTimeKey and engagementScrollKey are the properties that
	// hold the time the page was visible, in milliseconds, and the deepest
	// scroll position reached, in percent.
	engagementTimeKey   = "ms"
	engagementScrollKey = "scroll"
)

// scope is the tenant and site every query is restricted to.
type scope struct {
	tenant, site uuid.UUID
}

// sqlBuilder accumulates bound parameters while SQL text is written.
type sqlBuilder struct {
	scope scope
	loc   *time.Location
	// watermark is the Finalizer's: visits that started before it are read
	// from sessions_final (zero: none are).
	watermark time.Time
	// rollup lets parts that rollup_days can answer read it (rollup.go);
	// multiday holds the site's months (YYYYMM) whose visitors do not add
	// up over days.
	rollup   bool
	multiday map[uint32]bool
	// openSince is the Engine's recentCutoff: visits since the watermark
	// with no event at or after it are all in sessions_recent (zero: none
	// are known to be).
	openSince time.Time
	args      []any
}

// bind adds v as a named parameter and returns its placeholder.
func (b *sqlBuilder) bind(v any) string {
	name := fmt.Sprintf("p%d", len(b.args))
	b.args = append(b.args, clickhouse.Named(name, v))
	return "@" + name
}

func (b *sqlBuilder) bindTime(t time.Time) string {
	return "toDateTime(" + b.bind(uint32(t.Unix())) + ")"
}

// tenantSite is the predicate every statement carries.
func (b *sqlBuilder) tenantSite() string {
	return "tenant_id = toUUID(" + b.bind(b.scope.tenant.String()) + ") AND site_id = toUUID(" + b.bind(b.scope.site.String()) + ")"
}

// eventsWhere is the WHERE clause of a read of the events in r that
// metrics count: every event but bots' and engagement events (interactions
// and non-interactive custom events).
func (b *sqlBuilder) eventsWhere(r timeRange) string {
	return b.tenantSite() + " AND ts >= " + b.bindTime(r.From) + " AND ts < " + b.bindTime(r.To) + " AND is_bot = 0 AND NOT " + engagementSQL
}

// engagementWhere is the WHERE clause of a read of the engagement events in
// r from engagement_events, which holds no other events (migration 0014).
func (b *sqlBuilder) engagementWhere(r timeRange) string {
	return b.tenantSite() + " AND ts >= " + b.bindTime(r.From) + " AND ts < " + b.bindTime(r.To) + " AND is_bot = 0"
}

// openVisits is a subquery of the ids of the visits that sessions_recent
// may not hold as they are now: those with an event at or after openSince.
func (b *sqlBuilder) openVisits() string {
	t := b.bindTime(b.openSince)
	return "SELECT session_id FROM sessions PREWHERE finalizeAggregation(ended_at) >= " + t +
		" WHERE " + b.tenantSite() + " AND day >= toDate(" + t + ")"
}

// sessionMerge is the -Merge expression of each sessions column.
func sessionMerge(col string) string {
	switch col {
	case "visitor_id":
		return "anyMerge(visitor_id)"
	case "user_id":
		return "maxMerge(user_id)"
	case "started_at":
		return "minMerge(started_at)"
	case "ended_at":
		return "maxMerge(ended_at)"
	case "pageviews":
		return "uniqExactIfMerge(pageviews)"
	case "events":
		return "uniqExactMerge(events)"
	case "entry_page":
		return "argMinIfMerge(entry_page)"
	case "exit_page":
		return "argMaxIfMerge(exit_page)"
	}
	return "argMinMerge(" + col + ")"
}

// sessionsInner reads whole visits that start in r, one row per session_id,
// with the given columns as <prefix><col> (<prefix>started_at is always
// there). Visits that started before the finalizer's watermark come from
// sessions_final, plain rows; later ones from sessions_recent, also plain,
// but for the open ones (openVisits: not ended at the Finalizer's last
// pass, or changed since), which are merged here from sessions per
// session_id, so that unmerged parts never count twice.
func (b *sqlBuilder) sessionsInner(r timeRange, cols []string, prefix string) string {
	cols = append([]string{"started_at"}, cols...)
	var uniq []string
	seen := map[string]bool{}
	for _, c := range cols {
		if !seen[c] {
			seen[c] = true
			uniq = append(uniq, c)
		}
	}
	// plain selects the columns from a table of plain visit rows.
	plain := func() string {
		sel := []string{"session_id"}
		for _, c := range uniq {
			e := c
			if c == "pageviews" || c == "events" {
				e = "toUInt64(" + c + ")" // as uniqExactMerge gives it
			}
			sel = append(sel, e+" AS "+prefix+c)
		}
		return strings.Join(sel, ", ")
	}
	var parts []string
	if b.watermark.After(r.From) {
		end := r.To
		if b.watermark.Before(end) {
			end = b.watermark
		}
		parts = append(parts, "SELECT "+plain()+" FROM sessions_final WHERE "+b.tenantSite()+
			" AND started_at >= "+b.bindTime(r.From)+" AND started_at < "+b.bindTime(end))
	}
	if b.watermark.Before(r.To) {
		live := r
		if b.watermark.After(live.From) {
			live.From = b.watermark
		}
		// The open visits' rows of the day before live.From are merged
		// too, so that one that started then is seen to and left out.
		// Without a cutoff (sessions_recent not written for this
		// watermark), every visit is merged.
		only := ""
		if !b.openSince.IsZero() {
			open := b.openVisits()
			parts = append(parts, "SELECT "+plain()+" FROM sessions_recent WHERE "+b.tenantSite()+
				" AND started_at >= "+b.bindTime(live.From)+" AND started_at < "+b.bindTime(live.To)+" AND session_id NOT IN ("+open+")")
			only = " PREWHERE session_id IN (" + open + ")"
		}
		sel := []string{"session_id"}
		for _, c := range uniq {
			sel = append(sel, sessionMerge(c)+" AS "+prefix+c)
		}
		first := live.From.UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
		to := live.To.UTC().AddDate(0, 0, sessionDaySlack)
		parts = append(parts, "SELECT "+strings.Join(sel, ", ")+" FROM sessions"+only+
			" WHERE "+b.tenantSite()+" AND day >= toDate("+b.bind(first.Format(time.DateOnly))+") AND day <= toDate("+b.bind(to.Format(time.DateOnly))+")"+
			" GROUP BY session_id HAVING "+prefix+"started_at >= "+b.bindTime(live.From)+" AND "+prefix+"started_at < "+b.bindTime(live.To))
	}
	return strings.Join(parts, " UNION ALL ")
}

// bucketExpr is the time bucket of a DateTime expression t, as a string
// (epoch seconds for minutes and hours, YYYY-MM-DD otherwise).
func (b *sqlBuilder) bucketExpr(t, grain string) string {
	tz := b.bind(b.loc.String())
	switch grain {
	case "minute":
		return "toString(toUInt32(toStartOfMinute(" + t + ", " + tz + ")))"
	case "hour":
		return "toString(toUInt32(toStartOfHour(" + t + ", " + tz + ")))"
	case "day":
		return "toString(toDate(" + t + ", " + tz + "))"
	case "week":
		return "toString(toMonday(" + t + ", " + tz + "))"
	default:
		return "toString(toStartOfMonth(" + t + ", " + tz + "))"
	}
}

// propExpr is the value of an event property, "(none)" when it is missing.
func (b *sqlBuilder) propExpr(key string) string {
	k := b.bind(key)
	return "if(has(prop_keys, " + k + "), prop_values[indexOf(prop_keys, " + k + ")], '(none)')"
}

// partQuery is one SQL statement of a query: metrics of one table, grouped
// by the query's dimensions.
type partQuery struct {
	table   table
	metrics []metric
	dims    []dimension
	filters []*filter
	r       timeRange
	// order and limit, when the part alone answers the query.
	order         []order
	limit, offset int
}

// visitCols lists the sessions columns a set of visit dimensions and
// filters need.
func visitCols(dims []dimension, filters []*filter, all bool) []string {
	var cols []string
	add := func(d dimension) {
		if d.kind == dimVisit && (all || !d.onEvents) {
			cols = append(cols, d.col)
		}
	}
	for _, d := range dims {
		add(d)
	}
	var walk func(f *filter)
	walk = func(f *filter) {
		if f.children == nil && leafOps[f.op] {
			add(f.dim)
		}
		for _, c := range f.children {
			walk(c)
		}
	}
	for _, f := range filters {
		walk(f)
	}
	return cols
}

// build writes the part's SQL. Its columns are d0…dn (String) and m0…mk
// (Float64).
func (b *sqlBuilder) build(p partQuery) string {
	if q, ok := b.buildRollup(p); ok {
		return q
	}
	var (
		sel   []string
		where string
		from  string
	)
	switch p.table {
	case tableEngagement:
		return b.engagedPages(p)
	case tableEvents, tableVisitEvents:
		from, where = b.eventsSource(p.r, p.dims, p.filters, p.table)
		for i, d := range p.dims {
			sel = append(sel, b.eventDimExpr(d)+" AS d"+fmt.Sprint(i))
		}
		for i, m := range p.metrics {
			sel = append(sel, b.eventMetricExpr(m)+" AS m"+fmt.Sprint(i))
		}
	case tableSessions:
		cols := append(visitCols(p.dims, p.filters, true), metricCols(p.metrics)...)
		from = "(" + b.sessionsInner(p.r, cols, "s_") + ")"
		for i, d := range p.dims {
			sel = append(sel, b.sessionDimExpr(d)+" AS d"+fmt.Sprint(i))
		}
		for i, m := range p.metrics {
			sel = append(sel, sessionMetricExpr(m)+" AS m"+fmt.Sprint(i))
		}
		where = "1"
		for _, f := range p.filters {
			where += " AND " + b.filterExpr(f, tableSessions, p.r)
		}
	}
	return "SELECT " + strings.Join(sel, ", ") + " FROM " + from + " WHERE " + where + b.groupTail(p)
}

// groupTail is the GROUP BY of the part's dimensions (columns d0…dn) and,
// when the part alone answers the query, its ORDER BY and LIMIT.
func (b *sqlBuilder) groupTail(p partQuery) string {
	if len(p.dims) == 0 {
		return ""
	}
	var g []string
	for i := range p.dims {
		g = append(g, "d"+fmt.Sprint(i))
	}
	q := " GROUP BY " + strings.Join(g, ", ")
	if p.limit > 0 {
		var ob []string
		for _, o := range p.order {
			name := "m" + fmt.Sprint(o.metric)
			if o.metric < 0 {
				name = "d" + fmt.Sprint(o.dim)
			}
			dir := " ASC"
			if o.desc {
				dir = " DESC"
			}
			ob = append(ob, name+dir)
		}
		ob = append(ob, g...) // a stable order among ties
		q += " ORDER BY " + strings.Join(ob, ", ")
		q += " LIMIT " + b.bind(p.offset) + ", " + b.bind(p.limit)
	}
	return q
}

// metricCols lists the sessions columns the visit metrics read (besides
// started_at, which is always there).
func metricCols(ms []metric) []string {
	var cols []string
	for _, m := range ms {
		switch m.kind {
		case mVisitors:
			cols = append(cols, "visitor_id")
		case mPageviews, mViewsPerVisit:
			cols = append(cols, "pageviews")
		case mBounceRate:
			cols = append(cols, "pageviews", "events")
		case mVisitDuration:
			cols = append(cols, "ended_at")
		}
	}
	return cols
}

// eventsSource is the FROM and WHERE of a read of the events of table t
// (tableEvents, tableVisitEvents or tableEngagement) in r that match
// filters, with the visit attributes dims and filters need joined from the
// visits (source, entry page… differ between a visit's events). Engagement
// events are read from engagement_events, which holds them alone: found
// among the other events of `events` they cost a read of every event's
// type and name.
func (b *sqlBuilder) eventsSource(r timeRange, dims []dimension, filters []*filter, t table) (from, where string) {
	from, where = "events", b.eventsWhere(r)
	if t == tableEngagement {
		from, where = "engagement_events", b.engagementWhere(r)
	}
	if cols := visitCols(dims, filters, false); len(cols) > 0 {
		from += " ANY LEFT JOIN (" + b.sessionsInner(widen(r), cols, "v_") + ") USING session_id"
	}
	for _, f := range filters {
		where += " AND " + b.filterExpr(f, t, r)
	}
	return from, where
}

// engagedPages writes part p of tableEngagement. A page visit is the
// engagement events of one visit (session_id) on one page (pathname): its
// engaged time is the sum of their times (each event once, however many
// copies are stored; a page hidden and shown again reports each visible
// stretch), its scroll depth the deepest of their scroll positions.
// time_on_page is the mean engaged time of the page visits in seconds,
// scroll_depth their mean scroll depth; the dimensions are those of the
// page visit's events (an event dimension or a visit attribute; a time
// bucket of the events' times).
func (b *sqlBuilder) engagedPages(p partQuery) string {
	from, where := b.eventsSource(p.r, p.dims, p.filters, tableEngagement)
	num := func(key string) string {
		return "toFloat64OrZero(prop_values[indexOf(prop_keys, " + b.bind(key) + ")])"
	}
	inner := []string{"session_id", "pathname",
		// Each event's time once; a negative or unreadable time is 0.
		"arraySum(arrayMap(x -> tupleElement(x, 2), groupUniqArray((event_id, greatest(0, " + num(engagementTimeKey) + "))))) AS e_ms",
		"max(least(100, greatest(0, " + num(engagementScrollKey) + "))) AS e_scroll"}
	group := []string{"session_id", "pathname"}
	var outer []string
	for i, d := range p.dims {
		name := "d" + fmt.Sprint(i)
		inner = append(inner, b.eventDimExpr(d)+" AS "+name)
		group = append(group, name)
		outer = append(outer, name)
	}
	for i, m := range p.metrics {
		e := "if(count() = 0, 0, sum(e_ms) / count() / 1000)"
		if m.kind == mScrollDepth {
			e = "if(count() = 0, 0, sum(e_scroll) / count())"
		}
		outer = append(outer, e+" AS m"+fmt.Sprint(i))
	}
	return "SELECT " + strings.Join(outer, ", ") + " FROM (SELECT " + strings.Join(inner, ", ") + " FROM " + from + " WHERE " + where +
		" AND session_id != 0 GROUP BY " + strings.Join(group, ", ") + ")" + b.groupTail(p)
}

// widen is r with a day more on each side: the visits an event query joins
// may have started before the range.
func widen(r timeRange) timeRange {
	return timeRange{From: r.From.AddDate(0, 0, -sessionDaySlack), To: r.To.AddDate(0, 0, sessionDaySlack), Loc: r.Loc}
}

func (b *sqlBuilder) eventDimExpr(d dimension) string {
	switch {
	case d.kind == dimTime:
		return b.bucketExpr("ts", d.grain)
	case d.prop != "":
		return b.propExpr(d.prop)
	case d.kind == dimVisit && !d.onEvents:
		return "v_" + d.col
	}
	return d.col
}

func (b *sqlBuilder) sessionDimExpr(d dimension) string {
	if d.kind == dimTime {
		return b.bucketExpr("s_started_at", d.grain)
	}
	return "s_" + d.col
}

func (b *sqlBuilder) eventMetricExpr(m metric) string {
	switch m.kind {
	case mVisitors, mConversionRate:
		return "toFloat64(uniqIf(visitor_id, visitor_id != 0))"
	case mPageviews:
		return "toFloat64(uniqExactIf(event_id, type = 'page'))"
	case mEvents:
		return "toFloat64(uniqExact(event_id))"
	case mSum:
		// Each event's value once, however many copies of it are stored.
		v := "toFloat64OrZero(prop_values[indexOf(prop_keys, " + b.bind(m.prop) + ")])"
		return "arraySum(arrayMap(x -> tupleElement(x, 2), groupUniqArrayIf((event_id, " + v + "), has(prop_keys, " + b.bind(m.prop) + "))))"
	}
	panic("dashboard: not an event metric: " + m.name)
}

func sessionMetricExpr(m metric) string {
	switch m.kind {
	case mVisitors:
		return "toFloat64(uniq(s_visitor_id))"
	case mVisits:
		return "toFloat64(count())"
	case mPageviews:
		return "toFloat64(sum(s_pageviews))"
	case mViewsPerVisit:
		return "if(count() = 0, 0, sum(s_pageviews) / count())"
	case mBounceRate:
		return "if(count() = 0, 0, 100 * countIf(s_pageviews = 1 AND s_events = 1) / count())"
	case mVisitDuration:
		return "if(count() = 0, 0, sum(toUInt32(s_ended_at) - toUInt32(s_started_at)) / count())"
	}
	panic("dashboard: not a visit metric: " + m.name)
}

// filterExpr writes a filter as a boolean expression over the rows of t.
func (b *sqlBuilder) filterExpr(f *filter, t table, r timeRange) string {
	switch f.op {
	case "and", "or":
		parts := make([]string, len(f.children))
		for i, c := range f.children {
			parts[i] = b.filterExpr(c, t, r)
		}
		return "(" + strings.Join(parts, " "+strings.ToUpper(f.op)+" ") + ")"
	case "not":
		return "NOT (" + b.filterExpr(f.children[0], t, r) + ")"
	}
	if t == tableSessions && f.dim.kind == dimEvent || (t == tableVisitEvents || t == tableEngagement) && f.dim.goal() {
		// A visit matches when one of its events does; a negated filter
		// holds for the visits with no matching event.
		pos := *f
		pos.op = strings.TrimSuffix(f.op, "_not")
		in := "session_id IN (SELECT session_id FROM events WHERE " + b.eventsWhere(widen(r)) + " AND session_id != 0 AND " + b.leafExpr(&pos, b.eventDimExpr(f.dim)) + ")"
		if f.negated() {
			return "NOT (" + in + ")"
		}
		return in
	}
	if t == tableSessions {
		return b.leafExpr(f, b.sessionDimExpr(f.dim))
	}
	return b.leafExpr(f, b.eventDimExpr(f.dim))
}

// leafExpr compares expression e with the filter's values.
func (b *sqlBuilder) leafExpr(f *filter, e string) string {
	values := f.values
	if f.caseFold {
		e = "lowerUTF8(" + e + ")"
		values = make([]string, len(f.values))
		for i, v := range f.values {
			values[i] = strings.ToLower(v)
		}
	}
	var expr string
	switch strings.TrimSuffix(f.op, "_not") {
	case "is":
		expr = "has(" + b.bind(values) + ", " + e + ")"
	case "contains":
		ors := make([]string, len(values))
		for i, v := range values {
			ors[i] = "position(" + e + ", " + b.bind(v) + ") > 0"
		}
		expr = "(" + strings.Join(ors, " OR ") + ")"
	case "matches":
		ors := make([]string, len(values))
		for i, v := range values {
			ors[i] = "match(" + e + ", " + b.bind(v) + ")"
		}
		expr = "(" + strings.Join(ors, " OR ") + ")"
	}
	if f.negated() {
		return "NOT " + expr
	}
	return expr
}
