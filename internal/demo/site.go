package demo

import (
	"math/rand/v2"
	"net/url"
	"slices"
	"sort"
	"strconv"

	"github.com/pulse-analytics/pulse/ingest/enrich"
)

// site is the model every visit is drawn from: the pages of a product's web
// site with how people move between them, the custom events they trigger,
// where they come from, where they are and what they browse with. It is built
// once per generator and only read afterwards.
type site struct {
	host    string
	pages   []page
	sources []source
	places  []place
	agents  []agent
	// index finds a page by its path.
	index map[string]int
	// sourcePick picks a source by its share of visits.
	sourcePick weighted
	// agentPick picks an agent per device class: desktop, mobile, tablet, bot.
	agentPick [numClasses]weighted
	// direct is what enrichment makes of an event without a referrer or
	// campaign, and of a pageview whose referrer is the site itself.
	direct enrich.Source
	// Indexes of pages and sources the generator refers to by name.
	appPage, checkoutPage, successPage int
	// signupPage and signupAction are the step of a sign-up.
	signupPage, signupAction int
	spikeSources             []int
}

type page struct {
	path, title string
	// dwell is the median time on the page; times are log-normal around it.
	dwell float64 // seconds
	// scroll is the median deepest scroll position, in percent, of a visitor
	// who stays the median time (a longer stay reaches deeper); fold is the
	// part of the page seen without scrolling, the least the tracker reports.
	scroll, fold float64
	// exit is the weight of leaving the site from this page, next the weights
	// of the pages people go to from it.
	exit    float64
	next    []link
	actions []action
	// Resolved by newSite:
	url  string   // https://host/path
	pick weighted // index of the next page; len(pages) means leaving
}

type link struct {
	path   string
	weight float64
}

// action is a custom event people trigger on a page with probability prob.
type action struct {
	name string
	prob float64
	// keys are the property names in the order ingest stores them (sorted).
	keys []string
	// numeric marks keys whose values a tracker sends as JSON numbers.
	numeric []bool
	// values returns the property values, in the order of keys.
	values func(r *rand.Rand, v *visitState) []string
	// then is the page the visitor goes to next when the event happens
	// (a sign-up leads into the app or to the checkout); nil: the page's links.
	then func(r *rand.Rand, v *visitState) string
}

// visitState is what one visit remembers between pages.
type visitState struct {
	plan string
}

// source is one way people arrive: a referrer and, for campaigns, the query of
// the landing page's URL.
type source struct {
	name   string
	weight float64
	// social sources bring more phone visitors.
	social bool
	// refs are referrer URLs, picked evenly; "" is none. localGoogle replaces
	// them with the Google domain of the visitor's country.
	refs        []string
	localGoogle bool
	// queries are landing-page URL queries, picked evenly; "" is none.
	queries []string
	// clickID is an ad click parameter appended with a fresh value per visit.
	clickID string
	entries []link
	// Resolved by newSite:
	entryPick weighted
	refHosts  []string // the host of each referrer
	// landing[r][q] is how enrichment classifies the landing pageview with
	// referrer r and query q, landingTrack[q] a custom event on the landing
	// page (the tracker sends no referrer with those).
	landing      [][]enrich.Source
	landingTrack []enrich.Source
	utm          [][5]string // the UTM fields of each query
}

// withClickID returns query with the source's ad click id set to id.
func (src *source) withClickID(query, id string) string {
	if src.clickID == "" {
		return query
	}
	return appendQuery(query, src.clickID+"="+id)
}

// place is a city visitors come from, with its local time.
type place struct {
	enrich.Location
	weight float64
	// offset is the local time's offset from UTC in minutes (standard time).
	offset int
	// google is the Google search page people of the country use, googleHost its host.
	google, googleHost string
}

// Device classes, for picking agents.
const (
	classDesktop = iota
	classMobile
	classTablet
	classBot
	numClasses
)

type agent struct {
	header string
	weight float64
	class  int
	parsed enrich.Agent
}

// weighted picks an index with probability proportional to its weight.
type weighted struct{ cum []float64 }

func newWeighted(weights []float64) weighted {
	cum := make([]float64, len(weights))
	var sum float64
	for i, w := range weights {
		sum += w
		cum[i] = sum
	}
	return weighted{cum: cum}
}

func (w weighted) pick(r *rand.Rand) int {
	x := r.Float64() * w.cum[len(w.cum)-1]
	i := sort.SearchFloat64s(w.cum, x)
	if i >= len(w.cum) {
		i = len(w.cum) - 1
	}
	// SearchFloat64s finds the first cum ≥ x; skip zero-weight entries equal to it.
	for i+1 < len(w.cum) && w.cum[i] == x {
		i++
	}
	return i
}

func oneOf[T any](r *rand.Rand, v []T) T { return v[r.IntN(len(v))] }

// newSite builds the model for a site served at host.
func newSite(host string) *site {
	s := &site{host: host, pages: sitePages(), sources: siteSources(), places: sitePlaces(), agents: siteAgents()}
	s.index = map[string]int{}
	for i := range s.pages {
		s.index[s.pages[i].path] = i
	}
	mustIndex := func(path string) int {
		i, ok := s.index[path]
		if !ok {
			panic("demo: the site model links to an unknown page " + path)
		}
		return i
	}
	for i := range s.pages {
		p := &s.pages[i]
		p.url = "https://" + host + p.path
		weights := make([]float64, len(s.pages)+1)
		for _, l := range p.next {
			weights[mustIndex(l.path)] += l.weight
		}
		weights[len(s.pages)] = p.exit
		p.pick = newWeighted(weights)
		if p.fold <= 0 || p.fold > p.scroll || p.scroll > 100 {
			panic("demo: the page " + p.path + " needs 0 < fold ≤ scroll ≤ 100")
		}
		for _, a := range p.actions {
			if !slices.IsSorted(a.keys) || len(a.numeric) != len(a.keys) {
				panic("demo: the properties of " + a.name + " must be sorted, with a numeric flag each")
			}
		}
	}
	s.appPage, s.checkoutPage, s.successPage = mustIndex("/app"), mustIndex("/checkout"), mustIndex("/checkout/success")
	s.signupPage = mustIndex("/signup")
	s.signupAction = slices.IndexFunc(s.pages[s.signupPage].actions, func(a action) bool { return a.name == "Signup" })
	if s.signupAction < 0 {
		panic("demo: the site model's /signup page has no Signup action")
	}

	s.direct = enrich.ClassifySource(nil, "", host)
	sourceWeights := make([]float64, len(s.sources))
	for i := range s.sources {
		src := &s.sources[i]
		sourceWeights[i] = src.weight
		entry := make([]float64, len(s.pages))
		for _, l := range src.entries {
			entry[mustIndex(l.path)] += l.weight
		}
		src.entryPick = newWeighted(entry)
		src.landing = make([][]enrich.Source, len(src.refs))
		for i, ref := range src.refs {
			if src.localGoogle {
				ref = "https://www.google.com/" // every Google domain is the same source
			}
			src.refHosts = append(src.refHosts, hostOf(ref))
			for _, q := range src.queries {
				values, _ := url.ParseQuery(src.withClickID(q, "x"))
				src.landing[i] = append(src.landing[i], enrich.ClassifySource(values, ref, host))
			}
		}
		for _, q := range src.queries {
			values, _ := url.ParseQuery(src.withClickID(q, "x"))
			src.landingTrack = append(src.landingTrack, enrich.ClassifySource(values, "", host))
			src.utm = append(src.utm, [5]string{values.Get("utm_source"), values.Get("utm_medium"),
				values.Get("utm_campaign"), values.Get("utm_term"), values.Get("utm_content")})
		}
		switch src.name {
		case "Hacker News", "Reddit", "Product Hunt", "Newsletter":
			s.spikeSources = append(s.spikeSources, i)
		}
	}
	s.sourcePick = newWeighted(sourceWeights)

	var byClass [numClasses][]float64
	for c := range byClass {
		byClass[c] = make([]float64, len(s.agents))
	}
	for i := range s.agents {
		a := &s.agents[i]
		a.parsed = enrich.ParseUserAgent(a.header)
		byClass[a.class][i] = a.weight
	}
	for c := range byClass {
		s.agentPick[c] = newWeighted(byClass[c])
	}
	return s
}

func appendQuery(q, param string) string {
	if q == "" {
		return param
	}
	return q + "&" + param
}

// pickAgent picks a browser; visitors from social networks use phones more.
func (s *site) pickAgent(r *rand.Rand, social bool) int {
	x := r.Float64()
	mobile := 0.36
	if social {
		mobile = 0.55
	}
	class := classDesktop
	switch {
	case x < 0.004:
		class = classBot
	case x < 0.004+0.045:
		class = classTablet
	case x < 0.004+0.045+mobile:
		class = classMobile
	}
	return s.agentPick[class].pick(r)
}

// sitePages is the product site: marketing pages, docs, a blog, the sign-up
// and checkout funnel, and the logged-in app.
func sitePages() []page {
	blogPosts := []string{
		"/blog/cookie-free-analytics", "/blog/google-analytics-alternatives", "/blog/clickhouse-at-scale",
		"/blog/gdpr-checklist", "/blog/launch-week", "/blog/tracking-single-page-apps",
	}
	docsSearch := action{name: "Docs Search", prob: 0.12, keys: []string{"query"}, numeric: []bool{false},
		values: func(r *rand.Rand, _ *visitState) []string {
			return []string{oneOf(r, []string{"install", "react", "next.js", "api key", "self-host", "funnels",
				"goals", "proxy", "gdpr", "retention", "custom events", "revenue", "docker", "wordpress"})}
		}}
	outbound := action{name: "Outbound Link", prob: 0.07, keys: []string{"url"}, numeric: []bool{false},
		values: func(r *rand.Rand, _ *visitState) []string {
			return []string{oneOf(r, []string{"https://github.com/pulse-analytics/pulse", "https://clickhouse.com/docs",
				"https://gdpr.eu/cookies/", "https://developer.mozilla.org/en-US/docs/Web/API/WebSocket"})}
		}}
	newsletter := action{name: "Newsletter Subscribe", prob: 0.02, keys: []string{"location"}, numeric: []bool{false},
		values: func(*rand.Rand, *visitState) []string { return []string{"blog"} }}
	post := func(path, title string) page {
		next := []link{{"/blog", 8}, {"/", 8}, {"/pricing", 6}, {"/features", 4}, {"/signup", 3}}
		for _, other := range blogPosts {
			if other != path {
				next = append(next, link{other, 1})
			}
		}
		return page{path: path, title: title, dwell: 110, scroll: 65, fold: 10, exit: 66, next: next, actions: []action{outbound, newsletter}}
	}
	// Documentation is read longer and further down than the marketing pages.
	docs := func(path, title string, dwell, scroll, fold, exit float64, next []link, more ...action) page {
		return page{path: path, title: title, dwell: dwell, scroll: scroll, fold: fold, exit: exit, next: next, actions: append([]action{docsSearch}, more...)}
	}
	return []page{
		{path: "/", title: "Pulse — privacy-first web analytics", dwell: 20, scroll: 55, fold: 20, exit: 38,
			next: []link{{"/pricing", 22}, {"/features", 12}, {"/docs", 8}, {"/blog", 5}, {"/signup", 7}, {"/login", 5},
				{"/customers", 4}, {"/about", 2}, {"/features/live", 3}, {"/changelog", 2}},
			actions: []action{
				{name: "CTA Click", prob: 0.08, keys: []string{"location"}, numeric: []bool{false},
					values: func(r *rand.Rand, _ *visitState) []string {
						return []string{oneOf(r, []string{"hero", "hero", "nav", "footer"})}
					}},
				{name: "Demo Video Play", prob: 0.05},
			}},
		{path: "/pricing", title: "Pricing — Pulse", dwell: 45, scroll: 45, fold: 35, exit: 40,
			next: []link{{"/signup", 24}, {"/features", 6}, {"/contact", 5}, {"/docs", 5}, {"/", 4}, {"/customers", 3}},
			actions: []action{{name: "Pricing Toggle", prob: 0.15, keys: []string{"interval"}, numeric: []bool{false},
				values: func(*rand.Rand, *visitState) []string { return []string{"yearly"} }}}},
		{path: "/features", title: "Features — Pulse", dwell: 35, scroll: 55, fold: 20, exit: 35,
			next: []link{{"/features/live", 14}, {"/features/privacy", 12}, {"/features/funnels", 10}, {"/pricing", 18}, {"/signup", 5}, {"/docs", 5}}},
		{path: "/features/live", title: "Live dashboards — Pulse", dwell: 40, scroll: 60, fold: 20, exit: 40,
			next: []link{{"/pricing", 20}, {"/features/privacy", 8}, {"/features/funnels", 8}, {"/signup", 8}, {"/docs", 6}}},
		{path: "/features/privacy", title: "Privacy by design — Pulse", dwell: 45, scroll: 60, fold: 20, exit: 42,
			next: []link{{"/pricing", 18}, {"/legal/privacy", 6}, {"/features/live", 6}, {"/blog/gdpr-checklist", 6}, {"/signup", 6}}},
		{path: "/features/funnels", title: "Funnels and retention — Pulse", dwell: 40, scroll: 60, fold: 20, exit: 40,
			next: []link{{"/pricing", 20}, {"/features/live", 8}, {"/signup", 8}, {"/docs", 6}}},
		docs("/docs", "Documentation — Pulse", 25, 50, 30, 25,
			[]link{{"/docs/getting-started", 30}, {"/docs/tracker", 14}, {"/docs/api", 12}, {"/docs/self-hosting", 12}, {"/pricing", 4}}),
		docs("/docs/getting-started", "Getting started — Pulse docs", 70, 75, 12, 40,
			[]link{{"/docs/tracker", 18}, {"/docs/api", 8}, {"/signup", 12}, {"/docs/self-hosting", 8}, {"/pricing", 5}},
			action{name: "Copy Snippet", prob: 0.35, keys: []string{"framework"}, numeric: []bool{false},
				values: func(r *rand.Rand, _ *visitState) []string {
					return []string{oneOf(r, []string{"html", "html", "react", "next.js", "vue", "wordpress"})}
				}}),
		docs("/docs/tracker", "The tracker — Pulse docs", 80, 75, 10, 45,
			[]link{{"/docs/api", 14}, {"/docs/getting-started", 8}, {"/docs", 8}, {"/signup", 6}}),
		docs("/docs/api", "Query API — Pulse docs", 90, 70, 8, 50,
			[]link{{"/docs/tracker", 10}, {"/docs", 10}, {"/pricing", 6}, {"/signup", 4}}),
		docs("/docs/self-hosting", "Self-hosting — Pulse docs", 100, 75, 10, 50,
			[]link{{"/docs", 10}, {"/pricing", 10}, {"/docs/getting-started", 6}, {"/contact", 3}},
			action{name: "File Download", prob: 0.18, keys: []string{"url"}, numeric: []bool{false},
				values: func(r *rand.Rand, _ *visitState) []string {
					return []string{oneOf(r, []string{"https://downloads.pulse.example/pulse_1.4.2_linux_amd64.tar.gz",
						"https://downloads.pulse.example/pulse_1.4.2_linux_arm64.tar.gz", "https://downloads.pulse.example/pulse_1.4.2_darwin_arm64.tar.gz"})}
				}}),
		{path: "/blog", title: "Blog — Pulse", dwell: 25, scroll: 50, fold: 25, exit: 30,
			next: []link{{blogPosts[0], 12}, {blogPosts[1], 11}, {blogPosts[2], 10}, {blogPosts[3], 9}, {blogPosts[4], 9}, {blogPosts[5], 8}, {"/", 6}}},
		post(blogPosts[0], "Cookie-free analytics, explained — Pulse"),
		post(blogPosts[1], "The best Google Analytics alternatives — Pulse"),
		post(blogPosts[2], "Counting a billion events with ClickHouse — Pulse"),
		post(blogPosts[3], "A GDPR checklist for web analytics — Pulse"),
		post(blogPosts[4], "Launch week: live funnels — Pulse"),
		post(blogPosts[5], "Tracking single-page apps the right way — Pulse"),
		{path: "/blog/2019/why-we-left-google-analytics", title: "Page not found — Pulse", dwell: 8, scroll: 100, fold: 100, exit: 60,
			next: []link{{"/", 25}, {"/blog", 15}},
			actions: []action{{name: "404", prob: 1, keys: []string{"path"}, numeric: []bool{false},
				values: func(*rand.Rand, *visitState) []string { return []string{"/blog/2019/why-we-left-google-analytics"} }}}},
		{path: "/changelog", title: "Changelog — Pulse", dwell: 45, scroll: 50, fold: 15, exit: 45,
			next: []link{{"/blog", 10}, {"/features", 10}, {"/pricing", 10}, {"/docs", 8}}},
		{path: "/about", title: "About us — Pulse", dwell: 30, scroll: 60, fold: 30, exit: 45,
			next: []link{{"/customers", 12}, {"/contact", 10}, {"/pricing", 10}, {"/", 8}}},
		{path: "/customers", title: "Customers — Pulse", dwell: 40, scroll: 55, fold: 20, exit: 40,
			next: []link{{"/pricing", 20}, {"/contact", 10}, {"/signup", 8}, {"/about", 5}}},
		{path: "/contact", title: "Contact sales — Pulse", dwell: 60, scroll: 80, fold: 60, exit: 65,
			next: []link{{"/", 10}, {"/pricing", 10}},
			actions: []action{{name: "Contact Sales", prob: 0.35, keys: []string{"company_size"}, numeric: []bool{false},
				values: func(r *rand.Rand, _ *visitState) []string {
					return []string{oneOf(r, []string{"1-10", "11-50", "11-50", "51-200", "201-1000", "1000+"})}
				}}}},
		{path: "/legal/privacy", title: "Privacy policy — Pulse", dwell: 40, scroll: 30, fold: 10, exit: 70,
			next: []link{{"/", 15}, {"/features/privacy", 10}}},
		// The funnel: / → /pricing → /signup → Signup → /checkout → Purchase.
		{path: "/signup", title: "Create your account — Pulse", dwell: 50, scroll: 90, fold: 80, exit: 55,
			next: []link{{"/pricing", 12}, {"/login", 8}},
			actions: []action{{name: "Signup", prob: 0.4, keys: []string{"method", "plan"}, numeric: []bool{false, false},
				values: func(r *rand.Rand, v *visitState) []string {
					v.plan = oneOf(r, []string{"free", "free", "free", "free", "free", "pro", "pro", "pro", "team"})
					return []string{oneOf(r, []string{"email", "email", "email", "google", "google", "github"}), v.plan}
				},
				then: func(_ *rand.Rand, v *visitState) string {
					if v.plan == "free" {
						return "/app"
					}
					return "/checkout"
				}}}},
		{path: "/checkout", title: "Checkout — Pulse", dwell: 70, scroll: 90, fold: 70, exit: 30,
			next: []link{{"/pricing", 15}},
			actions: []action{{name: "Purchase", prob: 0.58, keys: []string{"currency", "interval", "plan", "revenue"},
				numeric: []bool{false, false, false, true},
				values: func(r *rand.Rand, v *visitState) []string {
					plan := v.plan
					if plan != "team" {
						plan = "pro"
					}
					interval, price := "monthly", 29
					if plan == "team" {
						price = 99
					}
					if r.IntN(4) == 0 {
						interval, price = "yearly", price*10
					}
					return []string{oneOf(r, []string{"USD", "USD", "USD", "EUR"}), interval, plan, strconv.Itoa(price)}
				},
				then: func(*rand.Rand, *visitState) string { return "/checkout/success" }}}},
		{path: "/checkout/success", title: "Thank you — Pulse", dwell: 20, scroll: 100, fold: 100, exit: 50,
			next: []link{{"/app", 50}}},
		{path: "/login", title: "Log in — Pulse", dwell: 15, scroll: 100, fold: 100, exit: 15,
			next: []link{{"/signup", 5}},
			actions: []action{{name: "Login", prob: 0.85, keys: []string{"method"}, numeric: []bool{false},
				values: func(r *rand.Rand, _ *visitState) []string {
					return []string{oneOf(r, []string{"password", "password", "google", "github"})}
				},
				then: func(*rand.Rand, *visitState) string { return "/app" }}}},
		{path: "/app", title: "Dashboard — Pulse", dwell: 60, scroll: 70, fold: 60, exit: 30,
			next: []link{{"/app/sites", 35}, {"/app/settings", 20}}},
		{path: "/app/sites", title: "Sites — Pulse", dwell: 50, scroll: 75, fold: 50, exit: 45,
			next:    []link{{"/app", 25}, {"/app/settings", 10}},
			actions: []action{{name: "Site Added", prob: 0.2}}},
		{path: "/app/settings", title: "Settings — Pulse", dwell: 40, scroll: 80, fold: 50, exit: 55,
			next: []link{{"/app", 25}, {"/app/sites", 10}}},
	}
}

// siteSources are the ways people arrive, weighted by their share of visits.
func siteSources() []source {
	home := []link{{"/", 50}, {"/app", 14}, {"/login", 10}, {"/pricing", 6}, {"/docs", 8}, {"/blog", 4}, {"/changelog", 4}, {"/docs/api", 4}}
	search := []link{{"/blog/google-analytics-alternatives", 16}, {"/blog/cookie-free-analytics", 12}, {"/blog/gdpr-checklist", 10},
		{"/", 18}, {"/docs/getting-started", 10}, {"/docs/tracker", 6}, {"/docs/self-hosting", 5}, {"/features/privacy", 6},
		{"/pricing", 5}, {"/blog/tracking-single-page-apps", 6}, {"/blog/clickhouse-at-scale", 4}, {"/blog/2019/why-we-left-google-analytics", 2}}
	social := []link{{"/blog/launch-week", 14}, {"/blog/clickhouse-at-scale", 14}, {"/blog/cookie-free-analytics", 10},
		{"/", 30}, {"/features/live", 8}, {"/blog/tracking-single-page-apps", 6}, {"/blog/2019/why-we-left-google-analytics", 2}}
	dev := []link{{"/", 30}, {"/docs", 20}, {"/docs/getting-started", 20}, {"/docs/self-hosting", 15}, {"/docs/tracker", 10}, {"/blog/clickhouse-at-scale", 5}}
	campaign := []link{{"/", 50}, {"/pricing", 25}, {"/features/privacy", 15}, {"/features/live", 10}}
	email := []link{{"/blog/launch-week", 30}, {"/changelog", 25}, {"/blog/clickhouse-at-scale", 15}, {"/", 15}, {"/features/funnels", 15}}
	ai := []link{{"/", 40}, {"/docs/getting-started", 15}, {"/pricing", 15}, {"/blog/google-analytics-alternatives", 20}, {"/features/privacy", 10}}
	none := []string{""}
	return []source{
		{name: "Direct", weight: 27, refs: none, queries: none, entries: home},
		{name: "Google", weight: 22, refs: none, localGoogle: true, queries: none, entries: search},
		{name: "Bing", weight: 3, refs: []string{"https://www.bing.com/"}, queries: none, entries: search},
		{name: "DuckDuckGo", weight: 2.5, refs: []string{"https://duckduckgo.com/"}, queries: none, entries: search},
		{name: "Ecosia", weight: 0.6, refs: []string{"https://www.ecosia.org/"}, queries: none, entries: search},
		{name: "Brave Search", weight: 0.6, refs: []string{"https://search.brave.com/"}, queries: none, entries: search},
		{name: "Google Ads", weight: 4.5, refs: []string{"https://www.google.com/"}, clickID: "gclid", entries: campaign, queries: []string{
			"utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=pulse+analytics",
			"utm_source=google&utm_medium=cpc&utm_campaign=ga4-alternative&utm_term=google+analytics+alternative",
			"utm_source=google&utm_medium=cpc&utm_campaign=privacy-analytics&utm_term=cookieless+analytics",
		}},
		{name: "Bing Ads", weight: 0.8, refs: []string{"https://www.bing.com/"}, clickID: "msclkid", entries: campaign,
			queries: []string{"utm_source=bing&utm_medium=cpc&utm_campaign=brand&utm_term=pulse+analytics"}},
		{name: "Newsletter", weight: 3.5, refs: []string{"", "", "", "https://mail.google.com/"}, entries: email, queries: []string{
			"utm_source=newsletter&utm_medium=email&utm_campaign=monthly-digest",
			"utm_source=newsletter&utm_medium=email&utm_campaign=launch-week&utm_content=hero-link",
			"utm_source=newsletter&utm_medium=email&utm_campaign=launch-week&utm_content=footer-link",
		}},
		{name: "Hacker News", weight: 3.5, social: true, refs: []string{"https://news.ycombinator.com/"}, queries: none, entries: social},
		{name: "Reddit", weight: 2.5, social: true, refs: []string{"https://www.reddit.com/", "https://www.reddit.com/r/selfhosted/", "https://old.reddit.com/"}, queries: none, entries: social},
		{name: "X", weight: 2, social: true, refs: []string{"https://t.co/"}, queries: none, entries: social},
		{name: "LinkedIn", weight: 1.8, social: true, refs: []string{"https://www.linkedin.com/", "https://lnkd.in/"}, queries: none, entries: social},
		{name: "LinkedIn Ads", weight: 0.8, social: true, refs: []string{"https://www.linkedin.com/"}, entries: campaign,
			queries: []string{"utm_source=linkedin&utm_medium=paid_social&utm_campaign=q4-b2b&utm_content=carousel"}},
		{name: "Facebook", weight: 0.8, social: true, refs: []string{"https://l.facebook.com/", "https://m.facebook.com/"}, clickID: "fbclid", queries: none, entries: social},
		{name: "Bluesky", weight: 0.5, social: true, refs: []string{"https://bsky.app/"}, queries: none, entries: social},
		{name: "Mastodon", weight: 0.4, social: true, refs: []string{"https://mastodon.social/"}, queries: none, entries: social},
		{name: "GitHub", weight: 3.5, refs: []string{"https://github.com/pulse-analytics/pulse", "https://github.com/"}, queries: none, entries: dev},
		{name: "Stack Overflow", weight: 0.8, refs: []string{"https://stackoverflow.com/"}, queries: none, entries: dev},
		{name: "DEV", weight: 0.6, refs: []string{"https://dev.to/"}, queries: none, entries: social},
		{name: "ChatGPT", weight: 2.5, refs: []string{"https://chatgpt.com/"}, queries: []string{"utm_source=chatgpt.com", ""}, entries: ai},
		{name: "Perplexity", weight: 0.8, refs: []string{"https://www.perplexity.ai/"}, queries: none, entries: ai},
		{name: "Claude", weight: 0.4, refs: []string{"https://claude.ai/"}, queries: none, entries: ai},
		{name: "Product Hunt", weight: 0.7, social: true, refs: []string{"https://www.producthunt.com/"}, queries: []string{"ref=producthunt"}, entries: social},
		{name: "YouTube", weight: 0.8, social: true, refs: []string{"https://www.youtube.com/"}, queries: none, entries: social},
		{name: "Reviews", weight: 1.5, refs: []string{"https://alternativeto.net/", "https://www.g2.com/", "https://www.indiehackers.com/"}, queries: none, entries: campaign},
		{name: "Affiliate", weight: 0.5, refs: none, entries: campaign,
			queries: []string{"utm_source=partner-blog&utm_medium=affiliate&utm_campaign=spring"}},
	}
}

// sitePlaces are the cities visitors come from. Offsets are standard time
// (the rhythm does not need daylight saving time).
func sitePlaces() []place {
	p := func(country, region, city string, weight float64, offset int, tld string) place {
		return place{Location: enrich.Location{Country: country, Region: region, City: city}, weight: weight, offset: offset,
			google: "https://www.google." + tld + "/", googleHost: "www.google." + tld}
	}
	return []place{
		p("US", "California", "San Francisco", 6, -8*60, "com"),
		p("US", "California", "Los Angeles", 3, -8*60, "com"),
		p("US", "New York", "New York", 6, -5*60, "com"),
		p("US", "Texas", "Austin", 3, -6*60, "com"),
		p("US", "Washington", "Seattle", 3, -8*60, "com"),
		p("US", "Illinois", "Chicago", 2.5, -6*60, "com"),
		p("US", "Massachusetts", "Boston", 2.5, -5*60, "com"),
		p("US", "Georgia", "Atlanta", 1.5, -5*60, "com"),
		p("CA", "Ontario", "Toronto", 2.5, -5*60, "ca"),
		p("CA", "British Columbia", "Vancouver", 1.2, -8*60, "ca"),
		p("CA", "Quebec", "Montreal", 0.8, -5*60, "ca"),
		p("MX", "Mexico City", "Mexico City", 0.8, -6*60, "com.mx"),
		p("BR", "São Paulo", "São Paulo", 2.5, -3*60, "com.br"),
		p("AR", "Buenos Aires F.D.", "Buenos Aires", 0.6, -3*60, "com.ar"),
		p("GB", "England", "London", 6, 0, "co.uk"),
		p("GB", "England", "Manchester", 1.2, 0, "co.uk"),
		p("GB", "Scotland", "Edinburgh", 0.8, 0, "co.uk"),
		p("IE", "Leinster", "Dublin", 1, 0, "ie"),
		p("DE", "Land Berlin", "Berlin", 4, 60, "de"),
		p("DE", "Bavaria", "Munich", 2.5, 60, "de"),
		p("DE", "Hamburg", "Hamburg", 1.5, 60, "de"),
		p("FR", "Île-de-France", "Paris", 3.5, 60, "fr"),
		p("FR", "Auvergne-Rhône-Alpes", "Lyon", 0.8, 60, "fr"),
		p("NL", "North Holland", "Amsterdam", 2.5, 60, "nl"),
		p("ES", "Madrid", "Madrid", 1.2, 60, "es"),
		p("ES", "Catalonia", "Barcelona", 1, 60, "es"),
		p("IT", "Lombardy", "Milan", 1, 60, "it"),
		p("CH", "Zurich", "Zurich", 1, 60, "ch"),
		p("SE", "Stockholm County", "Stockholm", 1.2, 60, "se"),
		p("PL", "Mazovia", "Warsaw", 1.2, 60, "pl"),
		p("AT", "Vienna", "Vienna", 0.7, 60, "at"),
		p("UA", "Kyiv City", "Kyiv", 0.8, 120, "com.ua"),
		p("FI", "Uusimaa", "Helsinki", 0.6, 120, "fi"),
		p("ZA", "Gauteng", "Johannesburg", 0.5, 120, "co.za"),
		p("NG", "Lagos", "Lagos", 0.5, 60, "com.ng"),
		p("IN", "Karnataka", "Bengaluru", 3, 330, "co.in"),
		p("IN", "Maharashtra", "Mumbai", 1.5, 330, "co.in"),
		p("IN", "National Capital Territory of Delhi", "New Delhi", 1, 330, "co.in"),
		p("SG", "", "Singapore", 1, 480, "com.sg"),
		p("JP", "Tokyo", "Tokyo", 2, 540, "co.jp"),
		p("KR", "Seoul", "Seoul", 0.8, 540, "co.kr"),
		p("AU", "New South Wales", "Sydney", 2, 600, "com.au"),
		p("AU", "Victoria", "Melbourne", 1, 600, "com.au"),
		p("NZ", "Auckland", "Auckland", 0.4, 720, "co.nz"),
	}
}

// siteAgents are real User-Agent headers, weighted within their device class.
func siteAgents() []agent {
	return []agent{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 22, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", 6, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 14, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", 8, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15", 2, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", 7, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 4, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0", 2, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 2.5, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 2.5, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0", 1, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 1, classDesktop, enrich.Agent{}},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 30, classMobile, enrich.Agent{}},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", 10, classMobile, enrich.Agent{}},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", 6, classMobile, enrich.Agent{}},
		{"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", 30, classMobile, enrich.Agent{}},
		{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", 8, classMobile, enrich.Agent{}},
		{"Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", 2, classMobile, enrich.Agent{}},
		{"Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", 7, classTablet, enrich.Agent{}},
		{"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 3, classTablet, enrich.Agent{}},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", 1, classBot, enrich.Agent{}},
	}
}
