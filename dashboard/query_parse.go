package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pulse-analytics/pulse/auth"
)

// ParseQuery validates req for site at now.
func (e *Engine) ParseQuery(ctx context.Context, req Request, site auth.Site, now time.Time) (*Query, error) {
	site, warning, err := e.reportZone(ctx, site)
	if err != nil {
		return nil, err
	}
	q, err := parseQuery(req, site, now, func(s scope) (time.Time, error) { return e.firstDay(ctx, s) })
	if err != nil {
		return nil, err
	}
	if warning != "" {
		q.warnings = append(q.warnings, warning)
	}
	st, err := e.siteState(ctx, q.scope)
	if err != nil {
		return nil, err
	}
	q.watermark, q.multiday, q.openSince = st.watermark, st.multiday, st.openSince
	q.now = now
	return q, nil
}

// reportZone is site with the time zone its reports are computed in: its
// own when Go and the ClickHouse server both load it, else UTC and a warning
// that says so. auth refuses such zones, but one stored before it did (or
// that a server upgrade dropped) must not fail every report of the site.
func (e *Engine) reportZone(ctx context.Context, site auth.Site) (auth.Site, string, error) {
	if site.TimeZone == "" || site.TimeZone == "UTC" {
		return site, "", nil
	}
	_, err := time.LoadLocation(site.TimeZone)
	known := err == nil && site.TimeZone != "Local"
	if known {
		if known, err = e.db.KnowsTimeZone(ctx, site.TimeZone); err != nil {
			return site, "", queryError(err)
		}
	}
	if known {
		return site, "", nil
	}
	warning := fmt.Sprintf("the site's time zone %q is not known to the database; reports are in UTC", site.TimeZone)
	site.TimeZone = "UTC"
	return site, warning, nil
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
