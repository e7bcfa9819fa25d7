package stream

import (
	"fmt"
	"slices"
	"strings"
)

// View selects a part of the live state a subscriber wants.
type View uint16

// Views, by their wire names in subscribe.views.
const (
	ViewOnline View = 1 << iota
	ViewVisitors
	ViewRates
	ViewPages
	ViewEntries
	ViewSources
	ViewChannels
	ViewCountries
	ViewBrowsers
	ViewDevices
	ViewEvents
	ViewGoals
	ViewFeed

	// AllViews is every view; an empty views list in subscribe means this.
	AllViews = ViewFeed<<1 - 1
)

var viewNames = []string{"online", "visitors", "rates", "pages", "entries", "sources",
	"channels", "countries", "browsers", "devices", "events", "goals", "feed"}

// ParseViews turns wire view names into a View set; an empty list is AllViews.
func ParseViews(names []string) (View, error) {
	if len(names) == 0 {
		return AllViews, nil
	}
	var v View
	for _, n := range names {
		i := slices.Index(viewNames, n)
		if i < 0 {
			return 0, fmt.Errorf("unknown view %q (known: %s)", n, strings.Join(viewNames, ", "))
		}
		v |= 1 << i
	}
	return v, nil
}

// Dimensions of the top lists, in View order starting at ViewPages.
const (
	dimPages = iota
	dimEntries
	dimSources
	dimChannels
	dimCountries
	dimBrowsers
	dimDevices
	dimEvents
	numDims
)

// Snapshot is the whole live state of one site as a subscriber sees it.
// A nil view was not subscribed to.
type Snapshot struct {
	// Time is the server time of the state, Unix milliseconds.
	Time      int64     `json:"time"`
	Online    *Online   `json:"online,omitempty"`
	Visitors  *Visitors `json:"visitors,omitempty"`
	Rates     *Rates    `json:"rates,omitempty"`
	Pages     *Top      `json:"pages,omitempty"`
	Entries   *Top      `json:"entries,omitempty"`
	Sources   *Top      `json:"sources,omitempty"`
	Channels  *Top      `json:"channels,omitempty"`
	Countries *Top      `json:"countries,omitempty"`
	Browsers  *Top      `json:"browsers,omitempty"`
	Devices   *Top      `json:"devices,omitempty"`
	Events    *Top      `json:"events,omitempty"`
	Goals     *Goals    `json:"goals,omitempty"`
	Feed      *Feed     `json:"feed,omitempty"`
}

// Online is the number of visitors online now (docs/protocol.md, live stream, "Online now").
type Online struct {
	// Now is the distinct visitors with a live tracker connection or seen
	// over HTTP within the HTTP presence window.
	Now int `json:"now"`
	// Connections is the live tracker connections.
	Connections int `json:"connections"`
	// HTTP is the visitors counted only through HTTP events.
	HTTP int `json:"http"`
}

// Visitors is the estimated number of unique visitors (HyperLogLog).
type Visitors struct {
	Last30m uint64 `json:"30m"`
}

// Rates are the events and pageviews per second and per minute.
type Rates struct {
	Seconds Series `json:"seconds"`
	Minutes Series `json:"minutes"`
}

// Series is a window of counts ending at End (a Unix second for per-second
// series, a Unix minute, i.e. seconds/60, for per-minute series); index i
// holds time End-len+1+i.
type Series struct {
	End       int64    `json:"end"`
	Events    []uint32 `json:"events"`
	Pageviews []uint32 `json:"pageviews"`
}

// Top is a top list over the last 5 and 30 minutes.
type Top struct {
	Short []Count `json:"5m"`
	Long  []Count `json:"30m"`
}

// Count is one entry of a top list.
type Count struct {
	Key string `json:"key"`
	N   uint64 `json:"n"`
}

// Goals are the goal counters of a site.
type Goals struct {
	Items []Goal `json:"items"`
}

// Goal is the number of times a goal (a custom event name) fired.
type Goal struct {
	Name  string `json:"name"`
	Short uint64 `json:"5m"`
	Long  uint64 `json:"30m"`
	Hour  uint64 `json:"60m"`
}

// Feed is the recent events of a site, oldest first, without anything that
// identifies a visitor.
type Feed struct {
	// SampleEvery is k when only every k-th event enters the feed (busy site).
	SampleEvery int        `json:"sample_every"`
	Items       []FeedItem `json:"items"`
}

// FeedItem is one event of the live feed: no visitor, session or user id, no
// query string, title, properties, city or region.
type FeedItem struct {
	// N numbers the feed's items of the site, increasing.
	N       uint64 `json:"n"`
	Time    int64  `json:"time"`
	Type    string `json:"type"`
	Name    string `json:"name,omitempty"`
	Path    string `json:"path,omitempty"`
	Source  string `json:"source,omitempty"`
	Channel string `json:"channel,omitempty"`
	Country string `json:"country,omitempty"`
	Browser string `json:"browser,omitempty"`
	Device  string `json:"device,omitempty"`
}

// Delta turns the state of one sequence number into the next one. A nil
// view did not change.
type Delta struct {
	Time      int64       `json:"time"`
	Online    *Online     `json:"online,omitempty"`
	Visitors  *Visitors   `json:"visitors,omitempty"`
	Rates     *RatesDelta `json:"rates,omitempty"`
	Pages     *Top        `json:"pages,omitempty"`
	Entries   *Top        `json:"entries,omitempty"`
	Sources   *Top        `json:"sources,omitempty"`
	Channels  *Top        `json:"channels,omitempty"`
	Countries *Top        `json:"countries,omitempty"`
	Browsers  *Top        `json:"browsers,omitempty"`
	Devices   *Top        `json:"devices,omitempty"`
	Events    *Top        `json:"events,omitempty"`
	Goals     *Goals      `json:"goals,omitempty"`
	Feed      *FeedDelta  `json:"feed,omitempty"`
}

// RatesDelta changes the rate series; a nil series did not change.
type RatesDelta struct {
	Seconds *SeriesDelta `json:"seconds,omitempty"`
	Minutes *SeriesDelta `json:"minutes,omitempty"`
}

// SeriesDelta moves a series to End (slots that leave the window are
// dropped, new ones start at 0) and then sets Points, each [time, events,
// pageviews].
type SeriesDelta struct {
	End    int64      `json:"end"`
	Points [][3]int64 `json:"points,omitempty"`
}

// FeedDelta appends items to the feed (then only the last FeedSize are
// kept) and sets SampleEvery.
type FeedDelta struct {
	SampleEvery int        `json:"sample_every"`
	Add         []FeedItem `json:"add,omitempty"`
}

// tops lists the top-list fields of s in dimension order.
func (s *Snapshot) tops() [numDims]**Top {
	return [numDims]**Top{&s.Pages, &s.Entries, &s.Sources, &s.Channels, &s.Countries, &s.Browsers, &s.Devices, &s.Events}
}

func (d *Delta) tops() [numDims]**Top {
	return [numDims]**Top{&d.Pages, &d.Entries, &d.Sources, &d.Channels, &d.Countries, &d.Browsers, &d.Devices, &d.Events}
}

// Filter returns the views of s that v selects; the result shares s's data.
func (s *Snapshot) Filter(v View) Snapshot {
	out := Snapshot{Time: s.Time}
	if v&ViewOnline != 0 {
		out.Online = s.Online
	}
	if v&ViewVisitors != 0 {
		out.Visitors = s.Visitors
	}
	if v&ViewRates != 0 {
		out.Rates = s.Rates
	}
	src, dst := s.tops(), out.tops()
	for i := range numDims {
		if v&(ViewPages<<i) != 0 {
			*dst[i] = *src[i]
		}
	}
	if v&ViewGoals != 0 {
		out.Goals = s.Goals
	}
	if v&ViewFeed != 0 {
		out.Feed = s.Feed
	}
	return out
}

// Filter returns the views of d that v selects, and whether any is left.
func (d *Delta) Filter(v View) (Delta, bool) {
	out := Delta{Time: d.Time}
	any := false
	set := func(bit View, has bool) bool {
		ok := v&bit != 0 && has
		any = any || ok
		return ok
	}
	if set(ViewOnline, d.Online != nil) {
		out.Online = d.Online
	}
	if set(ViewVisitors, d.Visitors != nil) {
		out.Visitors = d.Visitors
	}
	if set(ViewRates, d.Rates != nil) {
		out.Rates = d.Rates
	}
	src, dst := d.tops(), out.tops()
	for i := range numDims {
		if set(ViewPages<<i, *src[i] != nil) {
			*dst[i] = *src[i]
		}
	}
	if set(ViewGoals, d.Goals != nil) {
		out.Goals = d.Goals
	}
	if set(ViewFeed, d.Feed != nil) {
		out.Feed = d.Feed
	}
	return out, any
}

// Diff returns the delta that turns base into cur, and whether anything
// changed. Both must hold the same views.
func Diff(base, cur *Snapshot) (Delta, bool) {
	d := Delta{Time: cur.Time}
	changed := false
	if cur.Online != nil && (base.Online == nil || *base.Online != *cur.Online) {
		d.Online, changed = cur.Online, true
	}
	if cur.Visitors != nil && (base.Visitors == nil || *base.Visitors != *cur.Visitors) {
		d.Visitors, changed = cur.Visitors, true
	}
	if cur.Rates != nil {
		var bs, bm *Series
		if base.Rates != nil {
			bs, bm = &base.Rates.Seconds, &base.Rates.Minutes
		}
		sd, sok := diffSeries(bs, &cur.Rates.Seconds)
		md, mok := diffSeries(bm, &cur.Rates.Minutes)
		if sok || mok {
			d.Rates, changed = &RatesDelta{}, true
			if sok {
				d.Rates.Seconds = sd
			}
			if mok {
				d.Rates.Minutes = md
			}
		}
	}
	btops, ctops, dtops := base.tops(), cur.tops(), d.tops()
	for i := range numDims {
		c := *ctops[i]
		if c != nil && !equalTop(*btops[i], c) {
			*dtops[i], changed = c, true
		}
	}
	if cur.Goals != nil && (base.Goals == nil || !slices.Equal(base.Goals.Items, cur.Goals.Items)) {
		d.Goals, changed = cur.Goals, true
	}
	if cur.Feed != nil {
		var last uint64
		sample := -1
		if base.Feed != nil {
			sample = base.Feed.SampleEvery
			if n := len(base.Feed.Items); n > 0 {
				last = base.Feed.Items[n-1].N
			}
		}
		i := len(cur.Feed.Items)
		for i > 0 && cur.Feed.Items[i-1].N > last {
			i--
		}
		if i < len(cur.Feed.Items) || sample != cur.Feed.SampleEvery {
			d.Feed, changed = &FeedDelta{SampleEvery: cur.Feed.SampleEvery, Add: cur.Feed.Items[i:]}, true
		}
	}
	return d, changed
}

func equalTop(a, b *Top) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Short, b.Short) && slices.Equal(a.Long, b.Long)
}

// shifted returns s's values moved to a window ending at end.
func shifted(vals []uint32, from, end int64, n int) []uint32 {
	out := make([]uint32, n)
	off := end - from
	for i := range out {
		j := int64(i) + off
		if j >= 0 && j < int64(len(vals)) {
			out[i] = vals[j]
		}
	}
	return out
}

func diffSeries(base, cur *Series) (*SeriesDelta, bool) {
	n := len(cur.Events)
	var ev, pv []uint32
	if base == nil {
		ev, pv = make([]uint32, n), make([]uint32, n)
	} else {
		ev, pv = shifted(base.Events, base.End, cur.End, n), shifted(base.Pageviews, base.End, cur.End, n)
	}
	d := &SeriesDelta{End: cur.End}
	for i := range n {
		if ev[i] != cur.Events[i] || pv[i] != cur.Pageviews[i] {
			t := cur.End - int64(n) + 1 + int64(i)
			d.Points = append(d.Points, [3]int64{t, int64(cur.Events[i]), int64(cur.Pageviews[i])})
		}
	}
	return d, base == nil || base.End != cur.End || len(d.Points) > 0
}

// Apply changes s by d, as a client does with the frames it receives. s must
// hold every view d changes (the views it subscribed to).
func (s *Snapshot) Apply(d *Delta) error {
	s.Time = d.Time
	if d.Online != nil {
		s.Online = d.Online
	}
	if d.Visitors != nil {
		s.Visitors = d.Visitors
	}
	if d.Rates != nil {
		if s.Rates == nil {
			return fmt.Errorf("stream: delta changes rates, which the snapshot does not hold")
		}
		r := *s.Rates
		if d.Rates.Seconds != nil {
			r.Seconds = applySeries(r.Seconds, d.Rates.Seconds)
		}
		if d.Rates.Minutes != nil {
			r.Minutes = applySeries(r.Minutes, d.Rates.Minutes)
		}
		s.Rates = &r
	}
	stops, dtops := s.tops(), d.tops()
	for i := range numDims {
		if t := *dtops[i]; t != nil {
			*stops[i] = t
		}
	}
	if d.Goals != nil {
		s.Goals = d.Goals
	}
	if d.Feed != nil {
		if s.Feed == nil {
			return fmt.Errorf("stream: delta changes the feed, which the snapshot does not hold")
		}
		items := append(slices.Clip(s.Feed.Items), d.Feed.Add...)
		if len(items) > FeedSize {
			items = items[len(items)-FeedSize:]
		}
		s.Feed = &Feed{SampleEvery: d.Feed.SampleEvery, Items: items}
	}
	return nil
}

func applySeries(s Series, d *SeriesDelta) Series {
	n := len(s.Events)
	out := Series{End: d.End, Events: shifted(s.Events, s.End, d.End, n), Pageviews: shifted(s.Pageviews, s.End, d.End, n)}
	for _, p := range d.Points {
		i := p[0] - (d.End - int64(n) + 1)
		if i >= 0 && i < int64(n) {
			out.Events[i], out.Pageviews[i] = uint32(p[1]), uint32(p[2])
		}
	}
	return out
}
