package demo

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/ingest/enrich"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// queryOne runs a query with one row and scans it into dest.
func queryOne(t *testing.T, db *chdb.DB, query string, dest ...any) {
	t.Helper()
	if err := db.QueryRow(context.Background(), query).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// TestLoadWritesTrafficWithTheShapeOfARealSite, with and without the full
// tracker's engagement events (which only add events: the visits' shape is
// the same).
func TestLoadWritesTrafficWithTheShapeOfARealSite(t *testing.T) {
	for _, engaged := range []bool{false, true} {
		t.Run(fmt.Sprintf("engagement=%v", engaged), func(t *testing.T) { testLoadShape(t, engaged) })
	}
}

func testLoadShape(t *testing.T, engaged bool) {
	db := chtest.Open(t)
	ctx := context.Background()
	to := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	cfg := LoadConfig{Tenant: uuid.New(), Site: uuid.New(), Events: 120_000, From: to.Add(-21 * 24 * time.Hour), To: to, Seed: 7, BatchRows: 25_000, Engagement: engaged}
	var progress strings.Builder
	cfg.Progress = &progress
	st, err := Load(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != cfg.Events {
		t.Errorf("Load reports %d events, want %d", st.Events, cfg.Events)
	}
	if strings.Count(progress.String(), "%) in ") < 3 || !strings.Contains(progress.String(), "loaded 120000 events") {
		t.Errorf("progress lines:\n%s", progress.String())
	}

	var (
		n, ids          uint64
		first, last     time.Time
		otherSite       uint64
		countries, chns uint64
		sources, pages  uint64
		browsers, devs  uint64
	)
	queryOne(t, db, "SELECT count(), uniqExact(event_id), min(ts), max(ts), countIf(site_id != toUUID('"+cfg.Site.String()+"')) FROM events", &n, &ids, &first, &last, &otherSite)
	if n != uint64(cfg.Events) || ids != n || otherSite != 0 {
		t.Fatalf("%d rows, %d distinct ids, %d of another site; want exactly %d of the site", n, ids, otherSite, cfg.Events)
	}
	if first.Before(cfg.From) || !last.Before(cfg.To) || first.Sub(cfg.From) > 6*time.Hour || cfg.To.Sub(last) > 6*time.Hour {
		t.Errorf("events from %s to %s, want them to span %s to %s", first, last, cfg.From, cfg.To)
	}
	queryOne(t, db, "SELECT uniqExact(country), uniqExact(channel), uniqExact(source), uniqExact(pathname), uniqExact(browser), uniqExact(device) FROM events",
		&countries, &chns, &sources, &pages, &browsers, &devs)
	t.Logf("%d countries, %d channels, %d sources, %d pages, %d browsers, %d device types", countries, chns, sources, pages, browsers, devs)
	if countries < 10 || chns < 8 || sources < 15 || pages < 20 || browsers < 5 || devs < 4 {
		t.Errorf("too little variety: %d countries, %d channels, %d sources, %d pages, %d browsers, %d device types", countries, chns, sources, pages, browsers, devs)
	}

	// Visits: several pageviews or a bounce; one visitor, place and browser
	// each. A visit lasts from its first to its last interaction (an
	// engagement event is none).
	var visits, bounces, multi, mixed uint64
	var meanPages, meanSeconds float64
	queryOne(t, db, `SELECT count(), countIf(pv = 1), countIf(pv > 1), countIf(people > 1), avg(pv), avg(seconds) FROM (
		SELECT session_id, countIf(type = 'page') AS pv, uniqExact(visitor_id, country, city, browser, os, device) AS people,
			max(toUInt32(ts)) - min(toUInt32(ts)) AS seconds
		FROM events WHERE is_bot = 0 AND name != 'engagement' GROUP BY session_id)`, &visits, &bounces, &multi, &mixed, &meanPages, &meanSeconds)
	bounceRate := float64(bounces) / float64(visits)
	t.Logf("%d visits: bounce rate %.1f%%, %.2f pageviews and %.0f s per visit", visits, 100*bounceRate, meanPages, meanSeconds)
	if bounceRate < 0.3 || bounceRate > 0.7 || multi < visits/4 || mixed != 0 {
		t.Errorf("%d visits, %d bounces, %d with several pageviews, %d with more than one visitor/place/browser", visits, bounces, multi, mixed)
	}
	if meanSeconds < 30 || meanSeconds > 600 {
		t.Errorf("a visit lasts %.0f s on average", meanSeconds)
	}
	// Engagement: one event for every page a person leaves (bots send
	// none), with the time it was visible and how far down it was read.
	var pageviews, engagements, timed, scrolled uint64
	queryOne(t, db, `SELECT countIf(type = 'page'), countIf(name = 'engagement'),
		countIf(name = 'engagement' AND toUInt64OrZero(prop_values[indexOf(prop_keys, 'ms')]) > 0),
		countIf(name = 'engagement' AND toUInt8OrZero(prop_values[indexOf(prop_keys, 'scroll')]) BETWEEN 1 AND 100)
		FROM events WHERE is_bot = 0`, &pageviews, &engagements, &timed, &scrolled)
	t.Logf("%d pageviews, %d engagement events", pageviews, engagements)
	if engaged && (engagements > pageviews || engagements < pageviews*99/100 || timed != engagements || scrolled != engagements) ||
		!engaged && engagements != 0 {
		t.Errorf("%d pageviews, %d engagement events (%d of them with a visible time, %d with a scroll depth); engagement %v", pageviews, engagements, timed, scrolled, engaged)
	}
	var visitors uint64
	queryOne(t, db, "SELECT uniqExact(visitor_id) FROM events WHERE is_bot = 0", &visitors)
	t.Logf("%d visitors: %.1f%% of the visits are returns", visitors, 100-100*float64(visitors)/float64(visits))
	if visitors >= visits || visitors < visits*7/10 {
		t.Errorf("%d visitors for %d visits: want some to return within a day, not most", visitors, visits)
	}

	// Entry pages vary with the source, and only the landing page carries it.
	var entries, directEntries, campaignLater uint64
	queryOne(t, db, `SELECT uniqExact(entry), countIf(src = '(direct)') FROM (
		SELECT session_id, argMin(pathname, (ts, type)) AS entry, argMin(source, (ts, type)) AS src FROM events WHERE type = 'page' GROUP BY session_id)`,
		&entries, &directEntries)
	if entries < 15 || directEntries > visits/2 {
		t.Errorf("%d distinct entry pages, %d of %d visits direct", entries, directEntries, visits)
	}
	queryOne(t, db, "SELECT count() FROM events WHERE type = 'page' AND referrer_host = 'example.com' AND (utm_source != '' OR source != '(direct)')", &campaignLater)
	if campaignLater != 0 {
		t.Errorf("%d pageviews after the landing page carry a campaign or source; the tracker's would not", campaignLater)
	}

	// Every row's source, medium and channel are what enrichment computes.
	rows, err := db.Query(ctx, "SELECT DISTINCT query, referrer, hostname, source, medium, channel FROM events")
	if err != nil {
		t.Fatal(err)
	}
	var combos int
	for rows.Next() {
		var q, ref, host, src, medium, channel string
		if err := rows.Scan(&q, &ref, &host, &src, &medium, &channel); err != nil {
			t.Fatal(err)
		}
		values, _ := url.ParseQuery(q)
		want := enrich.ClassifySource(values, ref, host)
		if want.Name != src || want.Medium != medium || want.Channel != channel {
			t.Errorf("query %q referrer %q: stored %s/%s/%s, enrichment says %s/%s/%s", q, ref, src, medium, channel, want.Name, want.Medium, want.Channel)
		}
		combos++
	}
	rows.Close()
	if combos < 30 {
		t.Errorf("only %d distinct query/referrer combinations", combos)
	}

	// Custom events with properties, revenue only with purchases.
	var (
		signups, purchases, props uint64
		revenue                   float64
	)
	queryOne(t, db, `SELECT countIf(name = 'Signup'), countIf(name = 'Purchase'),
		sumIf(toFloat64OrZero(prop_values[indexOf(prop_keys, 'revenue')]), name = 'Purchase'), countIf(length(prop_keys) > 0)
		FROM events WHERE type = 'track'`, &signups, &purchases, &revenue, &props)
	t.Logf("%d signups, %d purchases, revenue %.0f", signups, purchases, revenue)
	if signups == 0 || purchases == 0 || purchases >= signups || revenue < 29*float64(purchases) || props == 0 {
		t.Errorf("%d signups, %d purchases, revenue %.0f, %d events with properties", signups, purchases, revenue, props)
	}

	// The funnel / → /pricing → /signup → Signup loses people at every step.
	funnel := funnelCounts(t, db, []string{"page /", "page /pricing", "page /signup", "track Signup"})
	t.Logf("funnel %v", funnel)
	for i := 1; i < len(funnel); i++ {
		if funnel[i] == 0 || funnel[i] >= funnel[i-1] {
			t.Errorf("funnel %v: want every step smaller than the one before, and people at the end", funnel)
			break
		}
	}

	// Signed-in users: the visits that reach the app carry a user from there
	// on, a user comes back on later days, and fewer of a week's new users
	// come back each later week.
	var signedIn, users, returning, early, bots uint64
	queryOne(t, db, `SELECT uniqExactIf(session_id, user_id != ''), uniqExactIf(user_id, user_id != '') FROM events WHERE is_bot = 0`, &signedIn, &users)
	queryOne(t, db, `SELECT countIf(days > 1) FROM (SELECT user_id, uniqExact(toDate(ts)) AS days FROM events WHERE user_id != '' GROUP BY user_id)`, &returning)
	queryOne(t, db, `SELECT count() FROM (SELECT session_id, maxIf(ts, user_id = '') AS anon, minIf(ts, user_id != '') AS named
		FROM events GROUP BY session_id HAVING countIf(user_id != '') > 0 AND countIf(user_id = '') > 0 AND anon > named)`, &early)
	queryOne(t, db, `SELECT count() FROM events WHERE is_bot = 1 AND user_id != ''`, &bots)
	t.Logf("%d signed-in visits (%.1f%%), %d users, %d of them on several days", signedIn, 100*float64(signedIn)/float64(visits), users, returning)
	if signedIn < visits/50 || signedIn > visits/5 || returning < users/10 || early != 0 || bots != 0 {
		t.Errorf("%d of %d visits signed in, %d users, %d on several days, %d visits anonymous after signing in, %d bot events with a user",
			signedIn, visits, users, returning, early, bots)
	}
	rows, err = db.Query(ctx, `SELECT toUInt32(intDiv(toDate(ts) - toDate(?), 7)) AS w, uniqExact(user_id) FROM events
		WHERE user_id IN (SELECT user_id FROM events WHERE user_id != '' GROUP BY user_id HAVING min(ts) < toDateTime(?))
		GROUP BY w ORDER BY w`, uint32(cfg.From.Unix()), uint32(cfg.From.Add(7*24*time.Hour).Unix()))
	if err != nil {
		t.Fatal(err)
	}
	var weeks []uint64
	for rows.Next() {
		var w uint32
		var n uint64
		if err := rows.Scan(&w, &n); err != nil {
			t.Fatal(err)
		}
		weeks = append(weeks, n)
	}
	rows.Close()
	t.Logf("users first seen in the first week, seen per week: %v", weeks)
	if len(weeks) != 3 || weeks[1] == 0 || weeks[2] >= weeks[1] || weeks[1] >= weeks[0] {
		t.Errorf("users first seen in the first week, seen per week: %v; want fewer each week, and some in the third", weeks)
	}

	// A daily rhythm: the busiest UTC hour has several times the quietest.
	var quiet, busy uint64
	queryOne(t, db, "SELECT min(c), max(c) FROM (SELECT toHour(ts) AS h, count() AS c FROM events GROUP BY h)", &quiet, &busy)
	if busy < 2*quiet {
		t.Errorf("events per hour of the day from %d to %d: want a daily rhythm", quiet, busy)
	}
}

// funnelCounts counts the visits that reach each step ("page PATH" or
// "track NAME") in order.
func funnelCounts(t *testing.T, db *chdb.DB, steps []string) []int {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT session_id, concat(type, ' ', if(type = 'page', pathname, name)) FROM events ORDER BY session_id, ts, type, event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts := make([]int, len(steps))
	var (
		session, id uint64
		reached     int
		step        string
	)
	for rows.Next() {
		if err := rows.Scan(&id, &step); err != nil {
			t.Fatal(err)
		}
		if id != session {
			session, reached = id, 0
		}
		if reached < len(steps) && step == steps[reached] {
			counts[reached]++
			reached++
		}
	}
	return counts
}

func TestLoadIsDeterministicPerSeed(t *testing.T) {
	gen := func(seed uint64) []uuid.UUID {
		g := newGenerator("example.com", seed, 1, true)
		r := newRand(seed)
		var (
			v   visit
			ids []uuid.UUID
		)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 50 {
			g.next(r, start.Add(time.Duration(i)*time.Minute), &v)
			for _, e := range g.rows(owner{}, &v, start.Add(time.Hour*24), nil) {
				ids = append(ids, e.ID)
			}
		}
		return ids
	}
	if a, b := gen(1), gen(1); !slices.Equal(a, b) {
		t.Error("the same seed gave different event ids")
	}
	if a, b := gen(1), gen(2); slices.Equal(a, b) {
		t.Error("different seeds gave the same event ids")
	}
}
