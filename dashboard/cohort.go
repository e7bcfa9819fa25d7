package dashboard

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
)

// CohortRequest is the body of POST /api/v1/retention: cohort retention of
// identified users (not data retention, which is the lifecycle job's).
type CohortRequest struct {
	SiteID    string            `json:"site_id"`
	DateRange json.RawMessage   `json:"date_range"`
	Filters   []json.RawMessage `json:"filters"`
	Period    string            `json:"period"`
	Periods   int               `json:"periods"`
}

// CohortResult is the answer of POST /api/v1/retention.
type CohortResult struct {
	Cohorts []Cohort   `json:"cohorts"`
	Meta    CohortMeta `json:"meta"`
}

// Cohort is the users first seen in one period and how many came back in
// each later one.
type Cohort struct {
	Cohort   string    `json:"cohort"`
	Users    uint64    `json:"users"`
	Retained []uint64  `json:"retained"`
	Rate     []float64 `json:"rate"`
}

// CohortMeta describes what was answered.
type CohortMeta struct {
	TimeZone  string    `json:"time_zone"`
	Period    string    `json:"period"`
	DateRange [2]string `json:"date_range"`
	// IncompleteUntil is set while the range has not ended: the moment it
	// is answered up to. IncompletePeriod is then the start of the period
	// that holds it: the cells of that period (a cohort's own while it is
	// still forming, or a later period of an earlier cohort) count so far.
	IncompleteUntil  string `json:"incomplete_until,omitempty"`
	IncompletePeriod string `json:"incomplete_period,omitempty"`
	// Warnings say what the answer is not as asked (a site time zone the
	// database cannot use, so UTC).
	Warnings []string `json:"warnings,omitempty"`
}

func (a *API) cohorts(c *fiber.Ctx) error {
	ctx, cancel := a.requestContext(c)
	defer cancel()
	var req CohortRequest
	q, _, err := a.prepare(ctx, c, &req, func() Request {
		return Request{SiteID: req.SiteID, Metrics: []string{"visitors"}, DateRange: req.DateRange, Filters: req.Filters}
	})
	if err != nil {
		return a.fail(c, err)
	}
	if req.Period == "" {
		req.Period = "week"
	}
	if req.Period != "day" && req.Period != "week" {
		return a.fail(c, fieldErr("period", `must be "day" or "week"`))
	}
	if req.Periods == 0 {
		req.Periods = DefaultCohortPeriods
	}
	if req.Periods < 1 || req.Periods > MaxCohortPeriods {
		return a.fail(c, fieldErr("periods", "must be between 1 and %d", MaxCohortPeriods))
	}
	res, err := a.e.Cohorts(ctx, q, req.Period, req.Periods)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(res)
}

// Cohorts groups the identified users with events in q's range by the
// period of their first event in the range, and counts for each later
// period how many of them had an event in it.
func (e *Engine) Cohorts(ctx context.Context, q *Query, period string, periods int) (*CohortResult, error) {
	b := q.builder(false)
	bucket := "toDate(ts, " + b.bind(q.loc.String()) + ")"
	if period == "week" {
		bucket = "toMonday(ts, " + b.bind(q.loc.String()) + ")"
	}
	from1, where1 := b.eventsSource(q.r, nil, q.filters, tableEvents)
	from2, where2 := b.eventsSource(q.r, nil, q.filters, tableEvents)
	sql := "SELECT toString(first), toString(p), count() FROM (" +
		"SELECT DISTINCT user_id, " + bucket + " AS p FROM " + from1 + " WHERE " + where1 + " AND user_id != ''" +
		") ALL INNER JOIN (" +
		"SELECT user_id, min(" + bucket + ") AS first FROM " + from2 + " WHERE " + where2 + " AND user_id != '' GROUP BY user_id" +
		") USING user_id GROUP BY first, p"
	release, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := e.db.Query(e.ctx(ctx), sql, b.args...)
	if err != nil {
		return nil, queryError(err)
	}
	defer rows.Close()
	step := 1
	if period == "week" {
		step = 7
	}
	// The periods of the range, in order.
	var starts []time.Time
	for t := bucketStart(q.r.From, period, q.loc); t.Before(q.r.To); t = t.AddDate(0, 0, step) {
		starts = append(starts, t)
	}
	index := map[string]int{}
	for i, t := range starts {
		index[t.Format(time.DateOnly)] = i
	}
	counts := make([][]uint64, len(starts))
	for rows.Next() {
		var (
			first, p string
			n        uint64
		)
		if err := rows.Scan(&first, &p, &n); err != nil {
			return nil, queryError(err)
		}
		fi, ok1 := index[first]
		pi, ok2 := index[p]
		if !ok1 || !ok2 || pi < fi || pi-fi > periods {
			continue
		}
		if counts[fi] == nil {
			// Periods after the range's end are left out.
			counts[fi] = make([]uint64, min(periods+1, len(starts)-fi))
		}
		counts[fi][pi-fi] += n
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(err)
	}
	res := &CohortResult{Cohorts: []Cohort{}, Meta: CohortMeta{TimeZone: q.loc.String(), Period: period, DateRange: rangeLabels(q.r), IncompleteUntil: q.incompleteUntil(), Warnings: q.warnings}}
	if res.Meta.IncompleteUntil != "" {
		at := q.now
		if at.Before(q.r.From) {
			at = q.r.From
		}
		res.Meta.IncompletePeriod = bucketStart(at, period, q.loc).Format(time.DateOnly)
	}
	for i, c := range counts {
		if c == nil || c[0] == 0 {
			continue
		}
		co := Cohort{Cohort: starts[i].Format(time.DateOnly), Users: c[0], Retained: c, Rate: make([]float64, len(c))}
		for k, n := range c {
			co.Rate[k] = math.Round(float64(n)/float64(c[0])*1000) / 10
		}
		res.Cohorts = append(res.Cohorts, co)
	}
	slices.SortFunc(res.Cohorts, func(a, b Cohort) int {
		switch {
		case a.Cohort < b.Cohort:
			return -1
		case a.Cohort > b.Cohort:
			return 1
		}
		return 0
	})
	return res, nil
}
