package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// FunnelRequest is the body of POST /api/v1/funnel.
type FunnelRequest struct {
	SiteID    string            `json:"site_id"`
	DateRange json.RawMessage   `json:"date_range"`
	Filters   []json.RawMessage `json:"filters"`
	Steps     []FunnelStep      `json:"steps"`
	Window    int               `json:"window"`
	Breakdown string            `json:"breakdown"`
	Limit     int               `json:"limit"`
}

// FunnelStep is a pageview of a path (`*` matches any run of characters) or
// a custom event.
type FunnelStep struct {
	Page  string `json:"page,omitempty"`
	Event string `json:"event,omitempty"`
}

// FunnelResult is the answer of POST /api/v1/funnel.
type FunnelResult struct {
	Steps     []StepResult      `json:"steps"`
	Breakdown []FunnelBreakdown `json:"breakdown,omitempty"`
	Meta      FunnelMeta        `json:"meta"`
}

// StepResult is how many visitors reached one step.
type StepResult struct {
	Label              string  `json:"label"`
	Visitors           uint64  `json:"visitors"`
	ConversionRate     float64 `json:"conversion_rate"`
	ConversionRateStep float64 `json:"conversion_rate_step"`
	Dropoff            uint64  `json:"dropoff"`
}

// FunnelBreakdown is the funnel of the visitors with one breakdown value.
type FunnelBreakdown struct {
	Value string       `json:"value"`
	Steps []StepResult `json:"steps"`
}

// FunnelMeta describes what was answered.
type FunnelMeta struct {
	TimeZone  string    `json:"time_zone"`
	DateRange [2]string `json:"date_range"`
	Window    int       `json:"window"`
	// Warnings say what the answer is not as asked (a site time zone the
	// database cannot use, so UTC).
	Warnings []string `json:"warnings,omitempty"`
}

type funnel struct {
	q         *Query // site, range and filters
	steps     []FunnelStep
	window    int
	breakdown *dimension
	limit     int
}

func (a *API) funnel(c *fiber.Ctx) error {
	ctx, cancel := a.requestContext(c)
	defer cancel()
	var req FunnelRequest
	q, _, err := a.prepare(ctx, c, &req, func() Request {
		return Request{SiteID: req.SiteID, Metrics: []string{"visitors"}, DateRange: req.DateRange, Filters: req.Filters}
	})
	if err != nil {
		return a.fail(c, err)
	}
	f, err := parseFunnel(req, q)
	if err != nil {
		return a.fail(c, err)
	}
	res, err := a.e.Funnel(ctx, f)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(res)
}

func parseFunnel(req FunnelRequest, q *Query) (*funnel, error) {
	if len(req.Steps) < MinFunnelSteps || len(req.Steps) > MaxFunnelSteps {
		return nil, fieldErr("steps", "a funnel has %d to %d steps", MinFunnelSteps, MaxFunnelSteps)
	}
	for i, s := range req.Steps {
		field := fmt.Sprintf("steps[%d]", i)
		if (s.Page == "") == (s.Event == "") {
			return nil, fieldErr(field, `a step is {"page": path} or {"event": name}`)
		}
		if checkValue(s.Page+s.Event) != nil {
			return nil, fieldErr(field, "at most %d bytes of UTF-8", MaxValueLength)
		}
		if s.Event == engagementName {
			return nil, fieldErr(field+".event", "%q events report the time spent on a page, not something a visitor did: no funnel step counts them (see time_on_page and scroll_depth)", engagementName)
		}
	}
	f := &funnel{q: q, steps: req.Steps, window: req.Window, limit: req.Limit}
	if f.window == 0 {
		f.window = int(DefaultFunnelWindow / time.Second)
	}
	if f.window < 1 || f.window > int(MaxFunnelWindow/time.Second) {
		return nil, fieldErr("window", "seconds between 1 and %d (visitor ids change daily)", int(MaxFunnelWindow/time.Second))
	}
	if f.limit == 0 {
		f.limit = DefaultFunnelLimit
	}
	if f.limit < 1 || f.limit > MaxLimit {
		return nil, fieldErr("limit", "must be between 1 and %d", MaxLimit)
	}
	if req.Breakdown != "" {
		d, err := parseDimension("breakdown", req.Breakdown)
		if err != nil {
			return nil, err
		}
		if d.kind != dimVisit {
			return nil, fieldErr("breakdown", "a funnel breaks down by a visit: dimension")
		}
		f.breakdown = &d
	}
	return f, nil
}

// pagePattern turns a step path with `*` wildcards into an anchored RE2.
func pagePattern(p string) string {
	parts := strings.Split(p, "*")
	for i, s := range parts {
		parts[i] = regexp.QuoteMeta(s)
	}
	return "^" + strings.Join(parts, ".*") + "$"
}

// Funnel counts, per step, the visitors who did the steps in order within
// the window (ClickHouse's windowFunnel over each visitor's events).
func (e *Engine) Funnel(ctx context.Context, f *funnel) (*FunnelResult, error) {
	q := f.q
	b := q.builder(false)
	var dims []dimension
	if f.breakdown != nil {
		dims = append(dims, *f.breakdown)
	}
	from, where := b.eventsSource(q.r, dims, q.filters, tableEvents)
	conds := make([]string, len(f.steps))
	for i, s := range f.steps {
		if s.Page != "" {
			if strings.Contains(s.Page, "*") {
				conds[i] = "type = 'page' AND match(pathname, " + b.bind(pagePattern(s.Page)) + ")"
			} else {
				conds[i] = "type = 'page' AND pathname = " + b.bind(s.Page)
			}
		} else {
			conds[i] = "type != 'page' AND name = " + b.bind(s.Event)
		}
	}
	group := "''"
	if f.breakdown != nil {
		// A visitor counts under the value of their first event in the
		// range (any() would take whichever row it met first).
		group = "argMin(" + b.eventDimExpr(*f.breakdown) + ", (ts, event_id))"
	}
	sql := "SELECT g, level, count() FROM (SELECT visitor_id, " + group + " AS g, windowFunnel(" + b.bind(f.window) + ")(ts, " + strings.Join(conds, ", ") + ") AS level" +
		" FROM " + from + " WHERE " + where + " AND visitor_id != 0 GROUP BY visitor_id) WHERE level > 0 GROUP BY g, level"
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
	byGroup := map[string][]uint64{}
	total := make([]uint64, len(f.steps))
	for rows.Next() {
		var (
			g     string
			level uint8
			n     uint64
		)
		if err := rows.Scan(&g, &level, &n); err != nil {
			return nil, queryError(err)
		}
		if byGroup[g] == nil {
			byGroup[g] = make([]uint64, len(f.steps))
		}
		// A visitor who reached level L did every step up to L.
		for s := 0; s < int(level) && s < len(f.steps); s++ {
			byGroup[g][s] += n
			total[s] += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(err)
	}
	res := &FunnelResult{Steps: f.results(total), Meta: FunnelMeta{TimeZone: q.loc.String(), DateRange: rangeLabels(q.r), Window: f.window, Warnings: q.warnings}}
	if f.breakdown != nil {
		values := make([]string, 0, len(byGroup))
		for g := range byGroup {
			values = append(values, g)
		}
		slices.SortFunc(values, func(x, y string) int {
			if c := cmpFloat(float64(byGroup[y][0]), float64(byGroup[x][0])); c != 0 {
				return c
			}
			return strings.Compare(x, y)
		})
		for _, v := range values[:min(len(values), f.limit)] {
			res.Breakdown = append(res.Breakdown, FunnelBreakdown{Value: v, Steps: f.results(byGroup[v])})
		}
	}
	return res, nil
}

func (f *funnel) results(counts []uint64) []StepResult {
	out := make([]StepResult, len(f.steps))
	for i, s := range f.steps {
		r := StepResult{Label: s.Page + s.Event, Visitors: counts[i], ConversionRate: 100, ConversionRateStep: 100}
		if i > 0 {
			r.Dropoff = counts[i-1] - counts[i]
			r.ConversionRate = percent(counts[i], counts[0])
			r.ConversionRateStep = percent(counts[i], counts[i-1])
		} else if counts[0] == 0 {
			r.ConversionRate, r.ConversionRateStep = 0, 0
		}
		out[i] = r
	}
	return out
}

func percent(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(of)*1000) / 10
}
