package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
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
}

// builder is a SQL builder for q; rollup lets it read rollup_days.
func (q *Query) builder(rollup bool) *sqlBuilder {
	return &sqlBuilder{scope: q.scope, loc: q.loc, watermark: q.watermark, openSince: q.openSince, rollup: rollup, multiday: q.multiday}
}

// Result is the answer to a query (docs/query-api.md).
type Result struct {
	Results []Row      `json:"results"`
	Totals  *Totals    `json:"totals,omitempty"`
	Meta    ResultMeta `json:"meta"`
}

// Row is one group of a result.
type Row struct {
	Dimensions []string    `json:"dimensions"`
	Metrics    []float64   `json:"metrics"`
	Comparison *Comparison `json:"comparison,omitempty"`
}

// Totals are the metrics over the whole filtered range.
type Totals struct {
	Metrics    []float64   `json:"metrics"`
	Comparison *Comparison `json:"comparison,omitempty"`
}

// Comparison is the same metrics over the comparison range, and the change.
type Comparison struct {
	Metrics []float64  `json:"metrics"`
	Change  []*float64 `json:"change"`
}

// ResultMeta describes what was answered.
type ResultMeta struct {
	Metrics    []string  `json:"metrics"`
	Dimensions []string  `json:"dimensions"`
	TimeZone   string    `json:"time_zone"`
	DateRange  [2]string `json:"date_range"`
	// IncompleteUntil is set while the range has not ended: the moment it
	// is answered up to.
	IncompleteUntil     string          `json:"incomplete_until,omitempty"`
	ComparisonDateRange *[2]string      `json:"comparison_date_range,omitempty"`
	Comparison          *ComparisonMeta `json:"comparison,omitempty"`
	TotalRows           *int            `json:"total_rows,omitempty"`
}

// siteLocation is the site's time zone, UTC when it has none.
func siteLocation(s auth.Site) (*time.Location, error) {
	if s.TimeZone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("dashboard: site %s has time zone %q: %w", s.ID, s.TimeZone, err)
	}
	return loc, nil
}

// ParseQuery validates req for site at now.
func (e *Engine) ParseQuery(ctx context.Context, req Request, site auth.Site, now time.Time) (*Query, error) {
	q, err := parseQuery(req, site, now, func(s scope) (time.Time, error) { return e.firstDay(ctx, s) })
	if err != nil {
		return nil, err
	}
	st, err := e.siteState(ctx, q.scope)
	if err != nil {
		return nil, err
	}
	q.watermark, q.multiday, q.openSince = st.watermark, st.multiday, st.openSince
	q.now = now
	return q, nil
}

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

// parseQuery validates req for site at now; firstDay answers the preset "all".
func parseQuery(req Request, site auth.Site, now time.Time, firstDay func(scope) (time.Time, error)) (*Query, error) {
	loc, err := siteLocation(site)
	if err != nil {
		return nil, err
	}
	q := &Query{scope: scope{tenant: site.OrgID, site: site.ID}, loc: loc, include: req.Include}
	if len(req.Metrics) == 0 {
		return nil, fieldErr("metrics", "required: one or more of %s", knownMetrics)
	}
	if len(req.Metrics) > MaxMetrics {
		return nil, fieldErr("metrics", "at most %d metrics", MaxMetrics)
	}
	for i, name := range req.Metrics {
		m, err := parseMetric(fmt.Sprintf("metrics[%d]", i), name)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(q.metrics, func(o metric) bool { return o.name == m.name }) {
			return nil, fieldErr(fmt.Sprintf("metrics[%d]", i), "%q is listed twice", name)
		}
		q.metrics = append(q.metrics, m)
	}
	if len(req.Dimensions) > MaxDimensions {
		return nil, fieldErr("dimensions", "at most %d dimensions", MaxDimensions)
	}
	times := 0
	for i, name := range req.Dimensions {
		d, err := parseDimension(fmt.Sprintf("dimensions[%d]", i), name)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(q.dims, func(o dimension) bool { return o.name == d.name }) {
			return nil, fieldErr(fmt.Sprintf("dimensions[%d]", i), "%q is listed twice", name)
		}
		if d.kind == dimTime {
			times++
			if times > 1 {
				return nil, fieldErr(fmt.Sprintf("dimensions[%d]", i), "at most one time dimension")
			}
		}
		q.dims = append(q.dims, d)
	}
	if q.filters, err = parseFilters(req.Filters); err != nil {
		return nil, err
	}
	if err := q.checkMetrics(); err != nil {
		return nil, err
	}
	if q.r, err = parseDateRange(req.DateRange, loc, now, func() (time.Time, error) { return firstDay(q.scope) }); err != nil {
		return nil, err
	}
	if err := q.parseOrder(req.OrderBy); err != nil {
		return nil, err
	}
	q.limit, q.offset = DefaultLimit, req.Offset
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > MaxLimit {
			return nil, fieldErr("limit", "must be between 1 and %d", MaxLimit)
		}
		q.limit = *req.Limit
	}
	if q.offset < 0 || q.offset > MaxGroups {
		return nil, fieldErr("offset", "must be between 0 and %d", MaxGroups)
	}
	switch req.Include.Comparison {
	case "", comparePrevious, compareYear:
	default:
		return nil, fieldErr("include.comparison", "must be %q or %q", comparePrevious, compareYear)
	}
	if req.Include.TimeLabels {
		g := q.timeGrain()
		if g == "" {
			return nil, fieldErr("include.time_labels", "needs a time dimension")
		}
		if _, err := buckets(q.r, g); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// checkMetrics refuses metric, dimension and filter combinations that have
// no meaning.
func (q *Query) checkMetrics() error {
	var visitOnly []string
	for _, m := range q.metrics {
		if m.visitOnly() {
			visitOnly = append(visitOnly, m.name)
		}
	}
	var engaged []string
	for _, m := range q.metrics {
		if m.engaged() {
			engaged = append(engaged, m.name)
		}
	}
	for i, d := range q.dims {
		if d.kind == dimEvent && len(visitOnly) > 0 {
			return fieldErr(fmt.Sprintf("dimensions[%d]", i), "visit metric(s) %s cannot be broken down by the event dimension %s (a visit has many); use visit:entry_page or visit:exit_page", strings.Join(visitOnly, ", "), d.name)
		}
		if d.goal() && len(engaged) > 0 {
			return fieldErr(fmt.Sprintf("dimensions[%d]", i), "page metric(s) %s cannot be broken down by %s: they describe pages (engagement events carry no name or property of their own); use event:page, event:hostname, a visit: or a time: dimension", strings.Join(engaged, ", "), d.name)
		}
	}
	for i, m := range q.metrics {
		if m.kind != mConversionRate {
			continue
		}
		goal := slices.ContainsFunc(q.filters, func(f *filter) bool { return f.refersTo(dimEvent) }) ||
			slices.ContainsFunc(q.dims, func(d dimension) bool { return d.name == "event:name" })
		if !goal {
			return fieldErr(fmt.Sprintf("metrics[%d]", i), "conversion_rate needs a goal: a filter on event:name, event:page or event:props:<key>, or the dimension event:name")
		}
	}
	return nil
}

func (q *Query) timeGrain() string {
	for _, d := range q.dims {
		if d.kind == dimTime {
			return d.grain
		}
	}
	return ""
}

func (q *Query) parseOrder(raws []json.RawMessage) error {
	for i, raw := range raws {
		field := fmt.Sprintf("order_by[%d]", i)
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			return fieldErr(field, `must be [metric or dimension, "asc"|"desc"]`)
		}
		o := order{metric: -1, dim: -1}
		switch pair[1] {
		case "asc":
		case "desc":
			o.desc = true
		default:
			return fieldErr(field+"[1]", `must be "asc" or "desc"`)
		}
		if j := slices.IndexFunc(q.metrics, func(m metric) bool { return m.name == pair[0] }); j >= 0 {
			o.metric = j
		} else if j := slices.IndexFunc(q.dims, func(d dimension) bool { return d.name == pair[0] }); j >= 0 {
			o.dim = j
		} else {
			return fieldErr(field+"[0]", "%q is not one of the request's metrics or dimensions", pair[0])
		}
		q.order = append(q.order, o)
	}
	if len(q.order) == 0 {
		for j, d := range q.dims {
			if d.kind == dimTime {
				q.order = append(q.order, order{metric: -1, dim: j})
			}
		}
		q.order = append(q.order, order{metric: 0, dim: -1, desc: true})
	}
	return nil
}

// Engine runs queries against ClickHouse.
type Engine struct {
	db  *chdb.DB
	cfg Config
	// slots holds a token per statement in flight.
	slots chan struct{}
	// rollup lets queries read rollup_days (tests compare with it off).
	rollup bool
	// states shares reads of a site's state (siteState).
	states singleflight.Group
}

// NewEngine returns an engine over db.
func NewEngine(db *chdb.DB, cfg Config) *Engine {
	cfg.withDefaults()
	return &Engine{db: db, cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrentStatements), rollup: true}
}

// ctx adds the per-query ClickHouse limits.
func (e *Engine) ctx(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_execution_time": int(e.cfg.QueryTimeout / time.Second),
		"max_memory_usage":   int(e.cfg.QueryMemory),
		// result_overflow_mode is "throw" by default (and a string setting
		// cannot be sent to ClickHouse 18.16 over the native protocol).
		"max_result_rows": MaxGroups,
	}))
}

// acquire waits for a statement slot, or fails when ctx ends first.
func (e *Engine) acquire(ctx context.Context) (func(), error) {
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (waiting for a free statement slot)", ErrQueryTimeout)
	}
}

// firstDay is the first UTC day with visits of the site, zero when none.
func (e *Engine) firstDay(ctx context.Context, s scope) (time.Time, error) {
	b := &sqlBuilder{scope: s, loc: time.UTC}
	var day time.Time
	var n uint64
	q := "SELECT min(day), count() FROM sessions WHERE " + b.tenantSite()
	if err := e.db.QueryRow(e.ctx(ctx), q, b.args...).Scan(&day, &n); err != nil {
		return time.Time{}, queryError(err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return day, nil
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

// groups is the rows of a query keyed by their dimension values.
type groups struct {
	keys []string
	rows map[string]*Row
}

func newGroups() *groups { return &groups{rows: map[string]*Row{}} }

func (g *groups) row(dims []string, nMetrics int) *Row {
	k := strings.Join(dims, "\x00")
	r, ok := g.rows[k]
	if !ok {
		r = &Row{Dimensions: dims, Metrics: make([]float64, nMetrics)}
		g.rows[k] = r
		g.keys = append(g.keys, k)
	}
	return r
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
	res := &Result{Meta: ResultMeta{TimeZone: q.loc.String(), DateRange: rangeLabels(q.r), IncompleteUntil: q.incompleteUntil()}}
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

// sort orders rows by the query's order, then by dimension values.
func (q *Query) sort(rows []*Row, dims []dimension) {
	slices.SortStableFunc(rows, func(a, b *Row) int {
		for _, o := range q.order {
			var c int
			if o.metric >= 0 {
				c = cmpFloat(a.Metrics[o.metric], b.Metrics[o.metric])
			} else {
				c = strings.Compare(a.Dimensions[o.dim], b.Dimensions[o.dim])
			}
			if o.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		for i := range dims {
			if c := strings.Compare(a.Dimensions[i], b.Dimensions[i]); c != 0 {
				return c
			}
		}
		return 0
	})
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rawBucket is a bucket as the SQL returns it (see bucketExpr).
func rawBucket(b time.Time, grain string) string {
	if grain == "minute" || grain == "hour" {
		return strconv.FormatInt(b.Unix(), 10)
	}
	return b.Format(time.DateOnly)
}

// parseBucket reads a raw bucket back into the bucket's start in loc.
func parseBucket(s, grain string, loc *time.Location) (time.Time, bool) {
	if grain == "minute" || grain == "hour" {
		n, err := strconv.ParseInt(s, 10, 64)
		return time.Unix(n, 0).In(loc), err == nil
	}
	t, err := time.ParseInLocation(time.DateOnly, s, loc)
	return t, err == nil
}

// label turns raw time buckets into their labels.
func (q *Query) label(rows []*Row) {
	for j, d := range q.dims {
		if d.kind != dimTime {
			continue
		}
		for _, r := range rows {
			if t, ok := parseBucket(r.Dimensions[j], d.grain, q.loc); ok {
				r.Dimensions[j] = bucketLabel(t, d.grain, q.loc)
			}
		}
	}
}

func (q *Query) round(ms []float64) {
	for i, m := range q.metrics {
		ms[i] = roundMetric(m, ms[i])
	}
}

func roundMetric(m metric, v float64) float64 {
	switch m.kind {
	case mBounceRate, mConversionRate:
		return math.Round(v*10) / 10
	case mViewsPerVisit, mSum:
		return math.Round(v*100) / 100
	}
	return math.Round(v)
}

// rangeLabels names a range for meta: RFC 3339 with the site's offset.
func rangeLabels(r timeRange) [2]string {
	return [2]string{r.From.In(r.Loc).Format(time.RFC3339), r.To.In(r.Loc).Format(time.RFC3339)}
}

// Query errors a caller can act on.
var (
	ErrQueryTimeout  = errors.New("query took too long: narrow the date range or the filters")
	ErrQueryMemory   = errors.New("query needs too much memory: narrow the date range or the filters")
	ErrQueryTooLarge = errors.New("query has too many groups: add filters or use fewer dimensions")
)

// ClickHouse error codes the query API translates.
const (
	codeTimeoutExceeded     = 159
	codeMemoryLimitExceeded = 241
	codeTooManyRows         = 158
	codeTooManyRowsOrBytes  = 396
)

func queryError(err error) error {
	switch {
	case chdb.IsCode(err, codeTimeoutExceeded):
		return fmt.Errorf("%w (%v)", ErrQueryTimeout, err)
	case chdb.IsCode(err, codeMemoryLimitExceeded):
		return fmt.Errorf("%w (%v)", ErrQueryMemory, err)
	case chdb.IsCode(err, codeTooManyRows, codeTooManyRowsOrBytes):
		return fmt.Errorf("%w (%v)", ErrQueryTooLarge, err)
	}
	return fmt.Errorf("dashboard: query: %w", err)
}
