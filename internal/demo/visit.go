package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Visit shapes.
const (
	// maxPages ends a visit that keeps walking.
	maxPages = 25
	// dwellSpread is the σ of the log-normal time on a page.
	dwellSpread = 0.9
	// minDwell and maxDwell bound the time on one page.
	minDwell = 3 * time.Second
	maxDwell = 15 * time.Minute
	// hiddenShare is the share of page visits during which the visitor
	// switched to another tab for a while: the page reports less visible
	// time than its dwell (hiddenMin to hiddenMax of it).
	hiddenShare          = 0.25
	hiddenMin, hiddenMax = 0.3, 0.95
	// scrollSpread is the σ of the log-normal deepest scroll position
	// around the page's median, and scrollStay the power of the time on
	// the page (relative to its median) that scales it: who stays longer
	// reads further down.
	scrollSpread = 0.3
	scrollStay   = 0.3
	// returnShare is the share of visits by someone who already visited the
	// same UTC day (same visitor id, new session), when one is at hand.
	returnShare = 0.18
	// returnGap is the least time between a visitor's visits: more than the
	// 30 minutes after which ingest starts a new session.
	returnGap = 45 * time.Minute
	// poolSize bounds the visitors remembered for returning.
	poolSize = 256
	// returnDirect is the share of returning visitors who come back directly.
	returnDirect = 0.6
	// newUsersShare sizes the site's users: each UTC day brings
	// visitsPerDay × newUsersShare new ones, about as many as the model's
	// visits sign up (a Signup event in 5.8 % of visits), so the users who
	// sign in later are mostly those who signed up.
	newUsersShare = 0.055
	// userGapDays is the mean of the exponential time between a user's
	// sign-up day and a later visit of theirs (at least a day), so fewer of a
	// cohort come back each week; userMaxDays bounds it.
	userGapDays = 12
	userMaxDays = 120
)

// visit is one planned visit: who, from where, and what they do when.
type visit struct {
	start time.Time
	// key seeds everything derived per event (event ids), so that a visit's
	// events do not depend on which of them are written.
	key    uint64
	source int
	query  int // index into the source's queries
	ref    int // index into the source's referrers
	// rawQuery is the landing page's URL query (with a fresh ad click id).
	rawQuery string
	agent    int
	place    int
	// visitor and session are the ids history rows carry; addr is the
	// number of the live visitor's loopback address (see Addr).
	visitor, session uint64
	addr             uint16
	steps            []step
	// end is when the visitor leaves (closes the tab), since start.
	end time.Duration
	// user is the id of the signed-in user, "" for none; the events from
	// step userFrom on (the first view of the app) carry it, as the site
	// identifies a visitor once they are in its app.
	user     string
	userFrom int
}

// referrer returns the referrer URL and host of the visit's landing pageview.
func (s *site) referrer(v *visit) (ref, host string) {
	src := &s.sources[v.source]
	if src.localGoogle {
		p := &s.places[v.place]
		return p.google, p.googleHost
	}
	return src.refs[v.ref], src.refHosts[v.ref]
}

// step is one event of a visit.
type step struct {
	at   time.Duration // since the visit started
	page int
	// action is pageview, engagement, or the index of the page's action.
	action int
	// values are the action's property values; an engagement's visible
	// time (ms) and deepest scroll position (percent).
	values []string
}

// Steps that are not a page's actions.
const (
	// pageview is a view of the page.
	pageview = -1
	// engagement is the full tracker's report of the page as it is left:
	// the time it was visible and how far down it was scrolled
	// (docs/sdk.md), a track event named engagementName with the
	// properties engagementKeys.
	engagement = -2
)

// engagementName and engagementKeys (sorted, as ingest stores them) are
// how the tracker sends an engagement.
const engagementName = "engagement"

var engagementKeys = []string{"ms", "scroll"}

// regular is someone who visited earlier the same UTC day and may return.
type regular struct {
	day     int64
	visitor uint64
	addr    uint16
	agent   int
	place   int
	left    time.Time
}

// generator draws visits from the site model at the rhythm's pace.
type generator struct {
	site   *site
	rhythm *rhythm
	pool   []regular
	seed   uint64
	// usersPerDay is how many users each UTC day's cohort has: signed-in
	// visits draw their user from the cohorts of earlier days.
	usersPerDay int
	// signupDay and signups number the day's sign-ups, each a new user.
	signupDay int64
	signups   int
	// engaged visits report each page they leave, as the full tracker does.
	engaged bool
}

// newGenerator draws visits of the site at host; engaged visits send an
// engagement event for every page they leave.
func newGenerator(host string, seed uint64, visitsPerDay float64, engaged bool) *generator {
	s := newSite(host)
	return &generator{site: s, rhythm: newRhythm(s, seed, visitsPerDay), seed: seed,
		usersPerDay: max(1, int(math.Round(visitsPerDay*newUsersShare))), engaged: engaged}
}

// next fills v with a visit starting at start, reusing v's steps.
func (g *generator) next(r *rand.Rand, start time.Time, v *visit) {
	s := g.site
	steps := v.steps[:0]
	*v = visit{start: start, key: r.Uint64(), visitor: r.Uint64(), session: r.Uint64(), addr: uint16(r.Uint32())}

	total, spike, spikeSource := g.rhythm.rate(start)
	returning := false
	if len(g.pool) > 0 && r.Float64() < returnShare {
		i := r.IntN(len(g.pool))
		if reg := g.pool[i]; reg.day == day(start) && start.Sub(reg.left) >= returnGap {
			v.visitor, v.addr, v.agent, v.place = reg.visitor, reg.addr, reg.agent, reg.place
			g.pool[i] = g.pool[len(g.pool)-1]
			g.pool = g.pool[:len(g.pool)-1]
			returning = true
		}
	}
	switch {
	case returning && r.Float64() < returnDirect:
		v.source = 0 // Direct
	case spike > 0 && r.Float64() < spike/total:
		v.source = spikeSource
	default:
		v.source = s.sourcePick.pick(r)
	}
	src := &s.sources[v.source]
	if !returning {
		v.place = g.rhythm.pickPlace(r, start)
		v.agent = s.pickAgent(r, src.social)
	}
	v.query = r.IntN(len(src.queries))
	v.rawQuery = src.queries[v.query]
	if src.clickID != "" {
		v.rawQuery = src.withClickID(v.rawQuery, clickID(r))
	}
	v.ref = r.IntN(len(src.refs))

	entry := src.entryPick.pick(r)
	if s.agents[v.agent].class == classBot {
		// Automation loads one page and leaves.
		v.steps = append(steps, step{page: entry, action: pageview})
		v.end = 2 * time.Second
	} else {
		v.steps, v.end = s.walk(r, entry, steps, g.engaged)
	}

	g.identify(r, v)

	reg := regular{day: day(start), visitor: v.visitor, addr: v.addr, agent: v.agent, place: v.place, left: start.Add(v.end)}
	if len(g.pool) < poolSize {
		g.pool = append(g.pool, reg)
	} else {
		g.pool[r.IntN(poolSize)] = reg
	}
}

// identify gives a visit of a person that reaches the app its user: a new
// one when it signs up first, otherwise (a log-in, or straight into the app)
// one of an earlier day's cohort, a recent one more likely than an old one.
func (g *generator) identify(r *rand.Rand, v *visit) {
	v.userFrom = len(v.steps)
	if g.site.agents[v.agent].class == classBot {
		return // automation does not sign in
	}
	signedUp := false
	for i, st := range v.steps {
		if st.page == g.site.signupPage && st.action == g.site.signupAction {
			signedUp = true
		}
		if st.page == g.site.appPage && st.action == pageview {
			v.userFrom = i
			break
		}
	}
	if v.userFrom == len(v.steps) {
		return
	}
	d := day(v.start)
	var k int
	if signedUp {
		if d != g.signupDay {
			g.signupDay, g.signups = d, 0
		}
		k = g.signups
		g.signups++
	} else {
		d -= 1 + min(int64(r.ExpFloat64()*userGapDays), userMaxDays-1)
		k = r.IntN(g.usersPerDay)
	}
	v.user = userID(g.seed, d, k)
}

// userID is the id of the k-th user of day d's cohort.
func userID(seed uint64, d int64, k int) string {
	return fmt.Sprintf("usr_%012x", mix(seed, uint64(d), uint64(k))>>16)
}

// walk plans a walk through the site from page entry: a pageview per page,
// the page's custom events while there, when engaged the page's engagement
// as it is left (just before the next pageview, or as the visitor leaves),
// and where to next, until the visitor leaves. It returns the steps
// (appended to steps) and the time of leaving.
func (s *site) walk(r *rand.Rand, entry int, steps []step, engaged bool) ([]step, time.Duration) {
	var (
		state visitState
		at    time.Duration
		p     = entry
	)
	for n := 1; ; n++ {
		steps = append(steps, step{at: at, page: p, action: pageview})
		pg := &s.pages[p]
		dwell := lognormal(r, pg.dwell)
		next := -1
		frac := 0.1
		for i := range pg.actions {
			a := &pg.actions[i]
			if r.Float64() >= a.prob {
				continue
			}
			frac += (0.9 - frac) * (0.2 + 0.6*r.Float64())
			st := step{at: at + time.Duration(frac*float64(dwell)), page: p, action: i}
			if a.values != nil {
				st.values = a.values(r, &state)
			}
			steps = append(steps, st)
			if a.then != nil {
				if i, ok := s.index[a.then(r, &state)]; ok {
					next = i
				}
				break
			}
		}
		at += dwell
		if engaged {
			steps = append(steps, step{at: at, page: p, action: engagement, values: pg.engagement(r, dwell)})
		}
		if next < 0 {
			next = pg.pick.pick(r)
		}
		if next == len(s.pages) || n == maxPages {
			return steps, at
		}
		p = next
	}
}

// engagement draws what the tracker reports of a visit to the page that
// lasted dwell: the time it was visible, in milliseconds (all of it, or
// part when the visitor switched tabs), and the deepest scroll position,
// in percent (at least the fold, deeper the longer the stay).
func (pg *page) engagement(r *rand.Rand, dwell time.Duration) []string {
	visible := dwell
	if r.Float64() < hiddenShare {
		visible = time.Duration((hiddenMin + (hiddenMax-hiddenMin)*r.Float64()) * float64(dwell))
	}
	stay := dwell.Seconds() / pg.dwell
	depth := pg.scroll * math.Pow(stay, scrollStay) * math.Exp(scrollSpread*r.NormFloat64())
	depth = min(max(depth, pg.fold), 100)
	return []string{strconv.FormatInt(max(visible.Milliseconds(), 1), 10), strconv.Itoa(int(math.Round(depth)))}
}

// lognormal returns a time on a page around median seconds.
func lognormal(r *rand.Rand, median float64) time.Duration {
	d := time.Duration(median * math.Exp(dwellSpread*r.NormFloat64()) * float64(time.Second))
	return min(max(d, minDwell), maxDwell)
}

// poisson draws from a Poisson distribution with mean m (Knuth's method for
// small means, a normal approximation for large ones).
func poisson(r *rand.Rand, m float64) int {
	if m > 30 {
		return max(0, int(math.Round(m+math.Sqrt(m)*r.NormFloat64())))
	}
	limit, k, p := math.Exp(-m), 0, r.Float64()
	for p > limit {
		k++
		p *= r.Float64()
	}
	return k
}

// clickID returns an ad network's click id: 24 URL-safe characters.
func clickID(r *rand.Rand) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var b [24]byte
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b[:])
}
