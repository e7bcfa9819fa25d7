package dashboard

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/pulse-analytics/pulse/auth"
)

// API serves the query endpoints: POST /api/v1/query, /api/v1/funnel and
// /api/v1/retention.
type API struct {
	e       *Engine
	store   *auth.Store
	log     *slog.Logger
	limiter *limiter
	now     func() time.Time
}

// NewAPI returns the query API over e, authorising callers with store.
func NewAPI(e *Engine, store *auth.Store, log *slog.Logger) *API {
	return &API{e: e, store: store, log: log, now: time.Now,
		limiter: newLimiter(e.cfg.QueriesPerSecond, e.cfg.QueryBurst, MaxRateLimited)}
}

// Register mounts the endpoints on r (the app root). The auth middleware
// authenticates the caller; every handler then checks that the caller may
// read the site named in the body.
func (a *API) Register(r fiber.Router) {
	g := r.Group("/api/v1", a.store.Middleware())
	g.Post("/query", a.limit, a.query)
	g.Post("/funnel", a.limit, a.funnel)
	g.Post("/retention", a.limit, a.cohorts)
}

// limit refuses anonymous callers and callers over their query rate.
func (a *API) limit(c *fiber.Ctx) error {
	p := auth.Caller(c)
	if p == nil {
		return c.Status(fiber.StatusUnauthorized).JSON(fiber.Map{"error": "authentication required: a session, an API key (Bearer sk_…) or a share link token"})
	}
	if wait, ok := a.limiter.allow(p.String(), a.now()); !ok {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return c.Status(fiber.StatusTooManyRequests).JSON(fiber.Map{"error": fmt.Sprintf("too many queries: at most %g a second (burst %d); retry after %s", a.e.cfg.QueriesPerSecond, a.e.cfg.QueryBurst, wait.Round(time.Millisecond))})
	}
	if len(c.Body()) > MaxBodyBytes {
		return c.Status(fiber.StatusRequestEntityTooLarge).JSON(fiber.Map{"error": fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes)})
	}
	return c.Next()
}

// site resolves the site a request names, if the caller may read it. The
// answer for a site of another tenant is the same as for no site at all.
func (a *API) site(c *fiber.Ctx, raw string) (auth.Site, error) {
	id, err := parseSiteID(raw)
	if err != nil {
		return auth.Site{}, err
	}
	s, err := a.store.VisibleSite(auth.Caller(c), id)
	if err != nil {
		return auth.Site{}, errSiteNotFound
	}
	return s, nil
}

var errSiteNotFound = errors.New("site not found")

// prepare decodes the body into body, then parses the query of the site it
// names, if the caller may read it. fields picks the query from the body.
func (a *API) prepare(ctx context.Context, c *fiber.Ctx, body any, fields func() Request) (*Query, auth.Site, error) {
	if err := decodeStrict(c.Body(), body); err != nil {
		return nil, auth.Site{}, err
	}
	req := fields()
	site, err := a.site(c, req.SiteID)
	if err != nil {
		return nil, auth.Site{}, err
	}
	q, err := a.e.ParseQuery(ctx, req, site, a.now())
	return q, site, err
}

// requestContext bounds one request's queries.
func (a *API) requestContext(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), a.e.cfg.QueryTimeout+2*time.Second)
}

func (a *API) query(c *fiber.Ctx) error {
	ctx, cancel := a.requestContext(c)
	defer cancel()
	var req Request
	q, site, err := a.prepare(ctx, c, &req, func() Request { return req })
	if err != nil {
		return a.fail(c, err)
	}
	res, err := a.e.Run(ctx, q)
	if err != nil {
		return a.fail(c, err)
	}
	if strings.Contains(c.Get(fiber.HeaderAccept), "text/csv") {
		return writeCSV(c, site, q, res)
	}
	return c.JSON(res)
}

// writeCSV answers a result as CSV: dimension and metric names, then rows.
func writeCSV(c *fiber.Ctx, site auth.Site, q *Query, res *Result) error {
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	from, to := q.r.From.In(q.loc).Format(time.DateOnly), q.r.To.Add(-time.Second).In(q.loc).Format(time.DateOnly)
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="pulse-%s-%s-%s.csv"`, fileSafe(site.Domain), from, to))
	w := csv.NewWriter(c.Response().BodyWriter())
	header := append(append([]string{}, res.Meta.Dimensions...), res.Meta.Metrics...)
	if err := w.Write(header); err != nil {
		return err
	}
	rec := make([]string, len(header))
	for _, r := range res.Results {
		n := copy(rec, r.Dimensions)
		for i, m := range r.Metrics {
			rec[n+i] = strconv.FormatFloat(m, 'f', -1, 64)
		}
		for i := range rec[:n] {
			rec[i] = csvSafe(rec[i])
		}
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// csvSafe keeps a spreadsheet from reading a value (a page path, a referrer
// chosen by anyone on the internet) as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// fail answers an error: 400 with the field for a wrong request, 404 for a
// site the caller may not read, 504/422 for queries over their limits.
func (a *API) fail(c *fiber.Ctx, err error) error {
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		return c.Status(fiber.StatusBadRequest).JSON(fe)
	case errors.Is(err, errSiteNotFound):
		return c.Status(fiber.StatusNotFound).JSON(fiber.Map{"error": "site not found", "field": "site_id"})
	case errors.Is(err, ErrQueryTimeout), errors.Is(err, context.DeadlineExceeded):
		return c.Status(fiber.StatusGatewayTimeout).JSON(fiber.Map{"error": ErrQueryTimeout.Error()})
	case errors.Is(err, ErrQueryMemory):
		return c.Status(fiber.StatusUnprocessableEntity).JSON(fiber.Map{"error": ErrQueryMemory.Error()})
	case errors.Is(err, ErrPattern):
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": err.Error()})
	case errors.Is(err, ErrQueryTooLarge):
		return c.Status(fiber.StatusUnprocessableEntity).JSON(fiber.Map{"error": ErrQueryTooLarge.Error()})
	}
	a.log.Error("query failed", "caller", auth.Caller(c).String(), "path", c.Path(), "err", err)
	return c.Status(fiber.StatusInternalServerError).JSON(fiber.Map{"error": "the query failed; it has been logged"})
}

// limiter is a token bucket per caller, with at most max callers remembered.
type limiter struct {
	rate  rate.Limit
	burst int
	max   int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newLimiter(perSecond float64, burst, max int) *limiter {
	return &limiter{rate: rate.Limit(perSecond), burst: burst, max: max, m: map[string]*rate.Limiter{}}
}

// allow takes one token of key, or says how long until one is there.
func (l *limiter) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.max {
			// Forget callers whose bucket is full again: they have been idle.
			for k, v := range l.m {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.m, k)
				}
			}
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}
