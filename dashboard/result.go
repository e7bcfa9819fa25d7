package dashboard

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
	// Warnings say what the answer is not as asked (a site time zone the
	// database cannot use, so UTC).
	Warnings []string `json:"warnings,omitempty"`
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
