package dashboard

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"
)

// Query is a validated query of one site.
type Query struct {
	scope   scope
	loc     *time.Location
	r       timeRange
	metrics []metric
	dims    []dimension
	filters []*filter
	order   []order
	limit   int
	offset  int
	include Include
	// watermark is when sessions_final stops (see Finalizer).
	watermark time.Time
	// multiday holds the months whose visitors rollup_days cannot sum.
	multiday map[uint32]bool
	// openSince is when the visits that sessions_recent may not hold
	// began to be open (see recentCutoff).
	openSince time.Time
	// now is when the query was asked: a range that has not ended is
	// answered and compared up to it.
	now time.Time
	// warnings go into the answer's meta (see reportZone).
	warnings []string
}

// builder is a SQL builder for q; rollup lets it read rollup_days.
func (q *Query) builder(rollup bool) *sqlBuilder {
	return &sqlBuilder{scope: q.scope, loc: q.loc, watermark: q.watermark, openSince: q.openSince, rollup: rollup, multiday: q.multiday}
}

// run executes one part and adds its metrics at the given positions.
func (e *Engine) run(ctx context.Context, q *Query, p partQuery, into *groups, pos []int) error {
	b := q.builder(e.rollup)
	sql := b.build(p)
	release, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	rows, err := e.db.Query(e.ctx(ctx), sql, b.args...)
	if err != nil {
		return queryError(err)
	}
	defer rows.Close()
	dims := make([]string, len(p.dims))
	vals := make([]float64, len(p.metrics))
	dest := make([]any, 0, len(dims)+len(vals))
	for i := range dims {
		dest = append(dest, &dims[i])
	}
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return queryError(err)
		}
		r := into.row(slices.Clone(dims), len(q.metrics))
		for i, v := range vals {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				v = 0
			}
			r.Metrics[pos[i]] = v
		}
	}
	if err := rows.Err(); err != nil {
		return queryError(err)
	}
	return nil
}

// plan splits the query's metrics into parts by the table that answers them
// (docs/query-api.md, "How queries run" and "Event filters"):
//
//   - visit metrics read the visits; filters on event: dimensions select the
//     visits with a matching event;
//   - events, sum:<property> and conversion_rate, and every metric broken
//     down by event:name or event:props:<key>, count the matching events
//     themselves (tableEvents): a goal's conversions. events is never read
//     from the visits, which leave non-interactive custom events out;
//   - visitors and pageviews describe the visits that did what the filters
//     on event:name and event:props:<key> say: read from the visits, or,
//     with an event:page or event:hostname filter or dimension, from those
//     visits' events (tableVisitEvents); without such filters the two are
//     the same, and the events are read as before (tableEvents);
//   - time_on_page and scroll_depth read the engagement events of those
//     visits (tableEngagement).
func (q *Query) plan(r timeRange, dims []dimension) (parts []partQuery, pos [][]int) {
	goalFilters := slices.ContainsFunc(q.filters, func(f *filter) bool { return f.any(dimension.goal) })
	pageFilters := slices.ContainsFunc(q.filters, func(f *filter) bool {
		return f.any(func(d dimension) bool { return d.kind == dimEvent && !d.goal() })
	})
	eventDims := slices.ContainsFunc(dims, func(d dimension) bool { return d.kind == dimEvent })
	goalDims := slices.ContainsFunc(dims, dimension.goal)
	// The parts in a fixed order, so that statements and merged rows are
	// the same for the same query.
	order := []table{tableEvents, tableVisitEvents, tableSessions, tableEngagement}
	byTable := map[table]*partQuery{}
	byPos := map[table][]int{}
	for i, m := range q.metrics {
		var t table
		switch {
		case m.visitOnly():
			t = tableSessions
		case m.engaged():
			t = tableEngagement
		case m.eventOnly():
			t = tableEvents
		case goalDims:
			t = tableEvents
		case !eventDims && !pageFilters:
			t = tableSessions
		case goalFilters:
			t = tableVisitEvents
		default:
			t = tableEvents
		}
		p := byTable[t]
		if p == nil {
			p = &partQuery{table: t, dims: dims, filters: q.filters, r: r}
			byTable[t] = p
		}
		p.metrics = append(p.metrics, m)
		byPos[t] = append(byPos[t], i)
	}
	for _, t := range order {
		if p := byTable[t]; p != nil {
			parts, pos = append(parts, *p), append(pos, byPos[t])
		}
	}
	return parts, pos
}

// Run answers q.
func (e *Engine) Run(ctx context.Context, q *Query) (*Result, error) {
	res := &Result{Meta: ResultMeta{TimeZone: q.loc.String(), DateRange: rangeLabels(q.r), IncompleteUntil: q.incompleteUntil(), Warnings: q.warnings}}
	for _, m := range q.metrics {
		res.Meta.Metrics = append(res.Meta.Metrics, m.name)
	}
	res.Meta.Dimensions = []string{}
	for _, d := range q.dims {
		res.Meta.Dimensions = append(res.Meta.Dimensions, d.name)
	}
	rows, total, err := e.rows(ctx, q, q.r, q.dims, true)
	if err != nil {
		return nil, err
	}
	if q.include.TotalRows {
		res.Meta.TotalRows = &total
	}
	var cmp comparison
	withhold := false
	if q.include.Comparison != "" {
		cmp = newComparison(q.r, q.include.Comparison, q.now)
		labels := rangeLabels(cmp.r)
		res.Meta.ComparisonDateRange = &labels
		res.Meta.Comparison = &ComparisonMeta{Mode: q.include.Comparison, DateRange: labels}
		covered, first, err := e.coverage(ctx, q.scope, cmp.r.From, q.r.To)
		if err != nil {
			return nil, err
		}
		if !covered {
			withhold = true
			res.Meta.Comparison.ChangeUnavailable = changeNotCovered
			if !first.IsZero() {
				res.Meta.Comparison.FirstData = first.In(q.loc).Format(time.RFC3339)
			}
		}
		prev, _, err := e.rows(ctx, q, cmp.r, q.dims, false)
		if err != nil {
			return nil, err
		}
		if err := q.attachComparison(rows, prev, cmp, withhold); err != nil {
			return nil, err
		}
	}
	if q.include.Totals {
		tot, _, err := e.rows(ctx, q, q.r, nil, false)
		if err != nil {
			return nil, err
		}
		res.Totals = &Totals{Metrics: tot[0].Metrics}
		if q.include.Comparison != "" {
			prev, _, err := e.rows(ctx, q, cmp.r, nil, false)
			if err != nil {
				return nil, err
			}
			res.Totals.Comparison = q.compare(tot[0].Metrics, prev[0].Metrics, withhold)
		}
	}
	q.label(rows)
	for _, r := range rows {
		q.round(r.Metrics)
		if r.Comparison != nil {
			q.round(r.Comparison.Metrics)
		}
	}
	if res.Totals != nil {
		q.round(res.Totals.Metrics)
		if res.Totals.Comparison != nil {
			q.round(res.Totals.Comparison.Metrics)
		}
	}
	res.Results = make([]Row, len(rows))
	for i, r := range rows {
		res.Results[i] = *r
	}
	return res, nil
}

// rows answers q's metrics over r grouped by dims. With page set, the rows
// are ordered, filled with empty time buckets when asked, and paged; total
// is the number of rows before paging.
func (e *Engine) rows(ctx context.Context, q *Query, r timeRange, dims []dimension, page bool) ([]*Row, int, error) {
	parts, pos := q.plan(r, dims)
	conv := slices.IndexFunc(q.metrics, func(m metric) bool { return m.kind == mConversionRate })
	single := len(parts) == 1 && conv < 0 && page && !q.include.TimeLabels && !q.include.TotalRows && len(dims) > 0
	// conversion_rate's denominator is read beside the parts.
	var (
		base    *groups
		baseErr = make(chan error, 1)
	)
	if conv >= 0 {
		go func() {
			var err error
			base, err = e.conversionBase(ctx, q, r, dims)
			baseErr <- err
		}()
	}
	g := newGroups()
	var err error
	for i, p := range parts {
		if single {
			p.order, p.limit, p.offset = q.order, q.limit, q.offset
		}
		if err = e.run(ctx, q, p, g, pos[i]); err != nil {
			break
		}
	}
	if conv >= 0 {
		if berr := <-baseErr; err == nil {
			err = berr
		}
	}
	if err != nil {
		return nil, 0, err
	}
	if conv >= 0 {
		conversionRates(dims, g, base, conv)
	}
	if len(dims) == 0 && len(g.keys) == 0 {
		g.row([]string{}, len(q.metrics))
	}
	if page && q.include.TimeLabels && len(dims) == 1 {
		all, _ := buckets(r, dims[0].grain)
		for _, b := range all {
			g.row([]string{rawBucket(b, dims[0].grain)}, len(q.metrics))
		}
	}
	out := make([]*Row, len(g.keys))
	for i, k := range g.keys {
		out[i] = g.rows[k]
	}
	if single {
		return out, len(out), nil
	}
	if page {
		q.sort(out, dims)
	}
	total := len(out)
	if page && !q.include.TimeLabels {
		lo := min(q.offset, len(out))
		out = out[lo:min(lo+q.limit, len(out))]
	}
	return out, total, nil
}

// conversionBase reads the denominator of conversion_rate: all visitors
// that match the query's other filters, grouped by the dimensions that are
// not event dimensions.
func (e *Engine) conversionBase(ctx context.Context, q *Query, r timeRange, dims []dimension) (*groups, error) {
	var baseDims []dimension
	for _, d := range dims {
		if d.kind != dimEvent {
			baseDims = append(baseDims, d)
		}
	}
	var baseFilters []*filter
	for _, f := range q.filters {
		if !f.refersTo(dimEvent) {
			baseFilters = append(baseFilters, f)
		}
	}
	base := newGroups()
	p := partQuery{table: tableSessions, metrics: []metric{{name: "visitors", kind: mVisitors}}, dims: baseDims, filters: baseFilters, r: r}
	bq := *q
	bq.metrics = p.metrics
	if err := e.run(ctx, &bq, p, base, []int{0}); err != nil {
		return nil, err
	}
	return base, nil
}

// conversionRates turns the visitors of the goal (already in column conv)
// into a percent of the visitors in base with the same values of the
// dimensions that are not event dimensions.
func conversionRates(dims []dimension, g, base *groups, conv int) {
	var keep []int
	for i, d := range dims {
		if d.kind != dimEvent {
			keep = append(keep, i)
		}
	}
	for _, k := range g.keys {
		row := g.rows[k]
		var bk []string
		for _, i := range keep {
			bk = append(bk, row.Dimensions[i])
		}
		den := 0.0
		if br, ok := base.rows[strings.Join(bk, "\x00")]; ok {
			den = br.Metrics[0]
		}
		if den > 0 {
			row.Metrics[conv] = 100 * row.Metrics[conv] / den
		} else {
			row.Metrics[conv] = 0
		}
	}
}
