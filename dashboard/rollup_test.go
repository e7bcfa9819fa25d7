package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
	"github.com/pulse-analytics/pulse/internal/demo"
)

// TestRollupAnswersEqualTheVisits loads realistic traffic of 90 days up to
// now into a site in UTC and one in Europe/Berlin, finalizes it, and asks
// each the same questions with rollup_days and without (every visit and
// event read): the answers must be the same, and rollup_days must have been
// read where it can answer.
func TestRollupAnswersEqualTheVisits(t *testing.T) {
	ctx := context.Background()
	db := chtest.Open(t)
	store := authtest.Store(t, db, auth.Config{})
	now := time.Now().UTC()
	berlin := "Europe/Berlin"
	var sites []auth.Site
	for i, tz := range []string{"", berlin} {
		tn := authtest.NewTenant(t, store, fmt.Sprintf("rollup%d.example", i))
		site := tn.Site
		if tz != "" {
			var err error
			if site, err = store.UpdateSite(ctx, site.ID, auth.SiteUpdate{TimeZone: &tz}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := demo.Load(ctx, db, demo.LoadConfig{Tenant: site.OrgID, Site: site.ID, Events: 15_000, To: now.Truncate(time.Hour), Seed: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
		sites = append(sites, site)
	}
	// Visits across midnight UTC, with a page on each side: where the rollup
	// days end (the watermark's day; the Finalizer's watermark is the start
	// of yesterday) and, in Berlin, where the 30 days' first whole UTC day
	// starts after the partial one.
	cross := func(site auth.Site, midnight time.Time, visitor uint64) {
		insertEvents(t, db, site,
			qEvent{at: midnight.Add(-5 * time.Minute).Format("2006-01-02 15:04"), typ: "page", page: "/across", visitor: visitor, session: visitor},
			qEvent{at: midnight.Add(5 * time.Minute).Format("2006-01-02 15:04"), typ: "page", page: "/across", visitor: visitor, session: visitor})
	}
	watermark := now.Truncate(24 * time.Hour).Add(-finalizeLag)
	cross(sites[0], watermark, 1)
	cross(sites[1], watermark, 2)
	loc, _ := time.LoadLocation(berlin)
	first := now.In(loc)
	first = time.Date(first.Year(), first.Month(), first.Day()-29, 0, 0, 0, 0, loc).UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	cross(sites[1], first, 3)
	passUntilSettled(t, NewFinalizer(db, FinalizerConfig{}))

	withRollup, without := NewEngine(db, Config{}), NewEngine(db, Config{})
	without.rollup = false
	limit := 100
	ask := func(metrics []string, rng string, dims ...string) Request {
		return Request{Metrics: metrics, Dimensions: dims, DateRange: json.RawMessage(rng), Limit: &limit}
	}
	visit := []string{"visitors", "visits", "pageviews", "events", "views_per_visit", "bounce_rate", "visit_duration"}
	questions := map[string]Request{}
	for name, r := range defaultReport("") {
		r.Limit = &limit
		questions["report/"+name] = r
	}
	questions["totals, 7 days"] = ask(visit, `"7d"`)
	questions["totals, this month"] = ask(visit, `"month"`)
	questions["totals, all time"] = ask(visit, `"all"`)
	questions["entry pages, every visit metric"] = ask(visit, `"30d"`, "visit:entry_page")
	questions["cities"] = ask([]string{"visitors", "visits", "bounce_rate"}, `"30d"`, "visit:city")
	questions["weeks"] = ask(visit, `"30d"`, "time:week")
	questions["months"] = ask([]string{"visitors", "pageviews"}, `"all"`, "time:month")
	questions["hosts"] = ask([]string{"visitors", "pageviews", "events"}, `"30d"`, "event:hostname")
	questions["pages over custom dates"] = ask([]string{"visitors", "pageviews"}, fmt.Sprintf(`[%q, %q]`,
		now.AddDate(0, 0, -40).Format(time.DateOnly), now.AddDate(0, 0, -10).Format(time.DateOnly)), "event:page")
	yoy := ask([]string{"visitors", "visits"}, `"30d"`, "visit:source")
	yoy.Include = Include{Totals: true, Comparison: comparePrevious}
	questions["sources with totals and the previous period"] = yoy

	for _, site := range sites {
		for name, req := range questions {
			t.Run(site.TimeZone+"/"+name, func(t *testing.T) {
				req.SiteID = site.ID.String()
				a, err := withRollup.ParseQuery(ctx, req, site, now)
				if err != nil {
					t.Fatal(err)
				}
				got, err := withRollup.Run(ctx, a)
				if err != nil {
					t.Fatal(err)
				}
				b, err := without.ParseQuery(ctx, req, site, now)
				if err != nil {
					t.Fatal(err)
				}
				want, err := without.Run(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("with rollup_days:\n%+v\nfrom the visits and events:\n%+v", got.Results, want.Results)
				}
				if len(a.multiday) > 0 {
					t.Errorf("months %v have visitors on several days; the demo's ids change daily", a.multiday)
				}
				// Every part reads rollup_days where its range holds a whole
				// UTC day before the watermark (not so "this month" on the
				// first two days of a month, whose days are all after it),
				// but a time series in Berlin (its days are not UTC days),
				// events by a visit: dimension (the visits do not hold every
				// event: they are counted from the events, joined to their
				// visits) and time on page and scroll depth (rollup_days
				// holds no page visits).
				if a.watermark.IsZero() {
					t.Fatal("the queries see no watermark after the Finalizer's passes")
				}
				berlinDays := site.TimeZone == berlin && slicesHasTime(a.dims)
				parts, _ := a.plan(a.r, a.dims)
				for _, p := range parts {
					joined := p.table == tableEvents && len(p.dims) == 1 && p.dims[0].kind == dimVisit
					engaged := p.table == tableEngagement
					want := wholeUTCDayBefore(p.r, a.watermark) && !berlinDays && !joined && !engaged
					bld := a.builder(true)
					if used := strings.Contains(bld.build(p), "rollup_days"); used != want {
						t.Errorf("part %d %+v over %s–%s, watermark %s: reads rollup_days = %v", p.table, p.dims, p.r.From, p.r.To, a.watermark, used)
					}
				}
			})
		}
	}
}

// wholeUTCDayBefore says whether r holds a whole UTC day that ends by the
// watermark: a day rollup_days has.
func wholeUTCDayBefore(r timeRange, watermark time.Time) bool {
	day := 24 * time.Hour
	first := r.From.UTC().Truncate(day)
	if first.Before(r.From) {
		first = first.Add(day)
	}
	end := r.To
	if watermark.Before(end) {
		end = watermark
	}
	return !first.Add(day).After(end)
}

func slicesHasTime(dims []dimension) bool {
	for _, d := range dims {
		if d.kind == dimTime {
			return true
		}
	}
	return false
}
