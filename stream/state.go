package stream

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/axiomhq/hyperloglog"
	"github.com/google/uuid"
)

// state is the live state of one site on this node. Every part is bounded
// (docs/protocol.md, live stream, "Memory") and additive: counters and sketches of two nodes
// can be summed and merged, which a multi-node bus will rely on. Not safe for
// concurrent use; site holds the lock.
type state struct {
	presenceTimeout, httpPresence time.Duration
	goals                         goalSource
	siteID                        uuid.UUID

	now    time.Time // latest time the state was advanced to
	curSec int64     // Unix second of now
	curMin int64     // Unix minute of now

	recent recentIDs

	secs [SecondsWindow]slot
	mins [MinutesWindow]slot

	dims [numDims]dimension

	hll       [TopWindowMinutes]minuteSketch
	hllClosed *hyperloglog.Sketch // merge of the closed minutes of the window
	hllAt     int64               // curMin when hllClosed was built; -1 stale

	goalNames  []string
	goalCounts [][MinutesWindow]slot // per goal, per minute (ev used)

	sessions map[uint64]int64 // session id → last minute seen

	feed        []FeedItem
	feedN       uint64
	feedSec     int64
	feedCount   int // events in feedSec
	feedPrev    int // events in the second before feedSec
	feedTaken   int // feed items taken in feedSec
	sampleEvery int

	conns map[uint64]*connPresence
	http  map[uint64]time.Time // visitor → last event over HTTP

	lastEvent time.Time
}

// slot is one time bucket of counts, valid when t is the bucket's time.
type slot struct {
	t      int64
	ev, pv uint32
}

type minuteSketch struct {
	t  int64
	sk *hyperloglog.Sketch
}

type connPresence struct {
	visitor uint64
	last    time.Time
}

// goalSource names the goals of a site (custom event names). Nil: every
// custom event name is a goal, first come, up to MaxGoals.
type goalSource interface {
	Goals(site uuid.UUID) []string
}

func newState(site uuid.UUID, cfg *Config, now time.Time) *state {
	s := &state{siteID: site, presenceTimeout: cfg.PresenceTimeout, httpPresence: cfg.HTTPPresence,
		goals: cfg.Goals, hllAt: -1, sessions: make(map[uint64]int64),
		conns: make(map[uint64]*connPresence), http: make(map[uint64]time.Time), sampleEvery: 1,
		recent: recentIDs{set: make(map[uint64]struct{})}}
	for i := range s.dims {
		s.dims[i].ids = make(map[string]int32)
	}
	s.now = now
	s.curSec = now.Unix()
	s.curMin = s.curSec / 60
	for i := range s.mins {
		s.mins[i].t = -1
	}
	for i := range s.secs {
		s.secs[i].t = -1
	}
	for i := range s.hll {
		s.hll[i].t = -1
	}
	for i := range s.dims {
		for j := range s.dims[i].buckets {
			s.dims[i].buckets[j].t = -1
		}
	}
	for i := range s.dims {
		s.dims[i].roll(s.curMin)
	}
	s.hll[s.curMin%TopWindowMinutes].t = s.curMin
	if cfg.Goals != nil {
		names := cfg.Goals.Goals(site)
		s.goalNames = slices.Clone(names[:min(len(names), MaxGoals)])
		s.goalCounts = make([][MinutesWindow]slot, len(s.goalNames))
	}
	return s
}

// advance moves the state's clock to now (never backwards), expiring what
// leaves the windows.
func (s *state) advance(now time.Time) {
	if !now.After(s.now) {
		return
	}
	s.now = now
	s.curSec = now.Unix()
	m := s.curSec / 60
	if m == s.curMin {
		return
	}
	for d := range s.dims {
		s.dims[d].roll(m)
	}
	for mm := max(s.curMin+1, m-TopWindowMinutes); mm <= m; mm++ {
		s.hll[mm%TopWindowMinutes] = minuteSketch{t: mm}
	}
	s.curMin = m
	s.hllAt = -1
	for id, last := range s.sessions {
		if last <= m-TopWindowMinutes {
			delete(s.sessions, id)
		}
	}
}

// sweepPresence forgets connections and HTTP visitors that no longer count.
func (s *state) sweepPresence(now time.Time) {
	for id, c := range s.conns {
		if now.Sub(c.last) > s.presenceTimeout {
			delete(s.conns, id)
		}
	}
	for v, t := range s.http {
		if now.Sub(t) > s.httpPresence {
			delete(s.http, v)
		}
	}
}

// add counts one event at s.now, unless its id was counted before; it
// reports whether it was counted.
func (s *state) add(e *Event) bool {
	if e.ID != uuid.Nil && !s.recent.insert(e.ID) {
		return false
	}
	now := s.now
	s.lastEvent = now
	if e.isEngagement() {
		// Not an interaction (docs/query-api.md): no number of the live
		// view counts it, but it shows that its visitor is still there.
		s.present(e, now)
		return true
	}
	pv := e.isPageview()
	si := s.curSec % SecondsWindow
	if s.secs[si].t != s.curSec {
		s.secs[si] = slot{t: s.curSec}
	}
	mi := s.curMin % MinutesWindow
	if s.mins[mi].t != s.curMin {
		s.mins[mi] = slot{t: s.curMin}
	}
	s.secs[si].ev++
	s.mins[mi].ev++
	if pv {
		s.secs[si].pv++
		s.mins[mi].pv++
		s.dims[dimPages].add(e.Pathname, s.curMin)
		if e.SessionID != 0 {
			if _, seen := s.sessions[e.SessionID]; !seen && len(s.sessions) < MaxSessionsPerSite {
				s.dims[dimEntries].add(e.Pathname, s.curMin)
			}
			if _, seen := s.sessions[e.SessionID]; seen || len(s.sessions) < MaxSessionsPerSite {
				s.sessions[e.SessionID] = s.curMin
			}
		}
		s.dims[dimSources].add(e.Source, s.curMin)
		s.dims[dimChannels].add(e.Channel, s.curMin)
		s.dims[dimCountries].add(e.Country, s.curMin)
		s.dims[dimBrowsers].add(e.Browser, s.curMin)
		s.dims[dimDevices].add(e.Device, s.curMin)
	}
	if e.isCustom() {
		s.dims[dimEvents].add(e.Name, s.curMin)
		s.countGoal(e.Name)
	}
	if e.VisitorID != 0 {
		h := &s.hll[s.curMin%TopWindowMinutes]
		if h.sk == nil {
			h.sk, _ = hyperloglog.NewSketch(HLLPrecision, true)
		}
		h.sk.InsertHash(e.VisitorID)
	}
	s.present(e, now)
	s.sampleFeed(e)
	return true
}

// present records that e's connection, or its visitor over HTTP, was seen at now.
func (s *state) present(e *Event, now time.Time) {
	if e.Conn != 0 {
		c := s.conns[e.Conn]
		if c == nil && len(s.conns) < MaxConnsPerSite {
			c = &connPresence{}
			s.conns[e.Conn] = c
		}
		if c != nil {
			c.visitor, c.last = e.VisitorID, now
		}
	} else if e.VisitorID != 0 {
		if _, ok := s.http[e.VisitorID]; ok || len(s.http) < MaxHTTPVisitorsPerSite {
			s.http[e.VisitorID] = now
		}
	}
}

func (s *state) countGoal(name string) {
	i := slices.Index(s.goalNames, name)
	if i < 0 {
		if s.goals != nil || len(s.goalNames) >= MaxGoals || name == "" {
			return
		}
		s.goalNames = append(s.goalNames, truncateKey(name))
		s.goalCounts = append(s.goalCounts, [MinutesWindow]slot{})
		i = len(s.goalNames) - 1
	}
	c := &s.goalCounts[i][s.curMin%MinutesWindow]
	if c.t != s.curMin {
		*c = slot{t: s.curMin}
	}
	c.ev++
}

// sampleFeed puts e in the feed, or every k-th event when the site is busy.
func (s *state) sampleFeed(e *Event) {
	if s.curSec != s.feedSec {
		if s.curSec == s.feedSec+1 {
			s.feedPrev = s.feedCount
		} else {
			s.feedPrev = 0
		}
		s.feedSec, s.feedCount, s.feedTaken = s.curSec, 0, 0
		s.sampleEvery = max(1, s.feedPrev/FeedPerSecond)
	}
	s.feedCount++
	if (s.feedCount-1)%s.sampleEvery != 0 || s.feedTaken >= FeedPerSecond {
		return
	}
	s.feedTaken++
	s.feedN++
	item := FeedItem{N: s.feedN, Time: s.now.UnixMilli(), Type: e.Type, Name: truncateKey(e.Name),
		Path: truncateKey(e.Pathname), Source: truncateKey(e.Source), Channel: truncateKey(e.Channel),
		Country: truncateKey(e.Country), Browser: truncateKey(e.Browser), Device: truncateKey(e.Device)}
	if len(s.feed) == FeedSize {
		copy(s.feed, s.feed[1:])
		s.feed[FeedSize-1] = item
	} else {
		s.feed = append(s.feed, item)
	}
}

// presence applies one change of a tracker connection.
func (s *state) presence(p Presence) {
	switch p.Kind {
	case Connected, Heartbeat:
		c := s.conns[p.Conn]
		if c == nil {
			if len(s.conns) >= MaxConnsPerSite {
				return
			}
			c = &connPresence{}
			s.conns[p.Conn] = c
		}
		c.last = s.now
	case Disconnected:
		delete(s.conns, p.Conn)
	}
}

// online counts the visitors online at s.now.
func (s *state) online() Online {
	var o Online
	seen := make(map[uint64]struct{}, len(s.conns))
	anon := 0
	for _, c := range s.conns {
		if s.now.Sub(c.last) > s.presenceTimeout {
			continue
		}
		o.Connections++
		if c.visitor == 0 {
			anon++ // no event yet: the connection stands for one visitor
			continue
		}
		seen[c.visitor] = struct{}{}
	}
	for v, t := range s.http {
		if s.now.Sub(t) > s.httpPresence {
			continue
		}
		if _, ok := seen[v]; !ok {
			o.HTTP++
		}
	}
	o.Now = len(seen) + anon + o.HTTP
	return o
}

// visitors estimates the unique visitors of the last 30 minutes.
func (s *state) visitors() uint64 {
	if s.hllAt != s.curMin {
		s.hllClosed, _ = hyperloglog.NewSketch(HLLPrecision, true)
		for _, h := range s.hll {
			if h.sk != nil && h.t > s.curMin-TopWindowMinutes && h.t < s.curMin {
				_ = s.hllClosed.Merge(h.sk) // same precision: cannot fail
			}
		}
		s.hllAt = s.curMin
	}
	cur := s.hll[s.curMin%TopWindowMinutes]
	if cur.sk == nil || cur.t != s.curMin {
		return s.hllClosed.Estimate()
	}
	all := s.hllClosed.Clone()
	_ = all.Merge(cur.sk)
	return all.Estimate()
}

// snapshot builds every view of the state at s.now.
func (s *state) snapshot() *Snapshot {
	on := s.online()
	snap := &Snapshot{Time: s.now.UnixMilli(), Online: &on, Visitors: &Visitors{Last30m: s.visitors()},
		Rates: &Rates{Seconds: series(s.secs[:], s.curSec), Minutes: series(s.mins[:], s.curMin)}}
	tops := snap.tops()
	for i := range numDims {
		*tops[i] = &Top{Short: s.dims[i].top(true), Long: s.dims[i].top(false)}
	}
	g := &Goals{Items: make([]Goal, len(s.goalNames))}
	for i, name := range s.goalNames {
		g.Items[i].Name = name
		for _, c := range s.goalCounts[i] {
			age := s.curMin - c.t
			if c.t < 0 || age < 0 || age >= MinutesWindow {
				continue
			}
			n := uint64(c.ev)
			g.Items[i].Hour += n
			if age < TopWindowMinutes {
				g.Items[i].Long += n
			}
			if age < ShortWindowMinutes {
				g.Items[i].Short += n
			}
		}
	}
	snap.Goals = g
	snap.Feed = &Feed{SampleEvery: s.sampleEvery, Items: slices.Clone(s.feed)}
	if snap.Feed.Items == nil {
		snap.Feed.Items = []FeedItem{}
	}
	return snap
}

// series reads a ring of slots as a window ending at end.
func series(ring []slot, end int64) Series {
	n := len(ring)
	out := Series{End: end, Events: make([]uint32, n), Pageviews: make([]uint32, n)}
	for i := range n {
		t := end - int64(n) + 1 + int64(i)
		if t < 0 {
			continue
		}
		if sl := ring[t%int64(n)]; sl.t == t {
			out.Events[i], out.Pageviews[i] = sl.ev, sl.pv
		}
	}
	return out
}

// dimension counts the values of one dimension per minute over the last 30
// minutes, with running totals for the 5- and 30-minute windows. Values get
// small ids so that the minute buckets hold numbers, not strings.
type dimension struct {
	ids         map[string]int32
	keys        []string
	long, short []uint64 // by id
	free        []int32
	buckets     [TopWindowMinutes]bucket
}

type bucket struct {
	t       int64 // the bucket's minute; -1 unused
	inShort bool  // counted in the short window's totals
	counts  map[int32]uint32
}

func truncateKey(k string) string {
	if len(k) <= MaxKeyBytes {
		return k
	}
	k = k[:MaxKeyBytes]
	for len(k) > 0 && !utf8.ValidString(k) {
		k = k[:len(k)-1]
	}
	return strings.Clone(k)
}

func (d *dimension) add(key string, minute int64) {
	if key == "" {
		key = "(none)"
	}
	key = truncateKey(key)
	id, ok := d.ids[key]
	if !ok {
		if len(d.ids) >= MaxKeysPerDimension {
			key = OtherKey
			id, ok = d.ids[key]
		}
		if !ok {
			key = strings.Clone(key) // do not keep the caller's backing array
			if n := len(d.free); n > 0 {
				id, d.free = d.free[n-1], d.free[:n-1]
				d.keys[id] = key
			} else {
				id = int32(len(d.keys))
				d.keys = append(d.keys, key)
				d.long = append(d.long, 0)
				d.short = append(d.short, 0)
			}
			d.ids[key] = id
		}
	}
	b := &d.buckets[minute%TopWindowMinutes]
	if b.counts == nil {
		b.counts = make(map[int32]uint32)
	}
	b.counts[id]++
	d.long[id]++
	d.short[id]++
}

// roll starts minute m: buckets older than 5 minutes leave the short
// window, buckets older than 30 minutes the long one (and are reused).
func (d *dimension) roll(m int64) {
	for i := range d.buckets {
		b := &d.buckets[i]
		if b.t < 0 {
			continue
		}
		if b.inShort && b.t <= m-ShortWindowMinutes {
			for id, n := range b.counts {
				d.short[id] -= uint64(n)
			}
			b.inShort = false
		}
		if b.t <= m-TopWindowMinutes {
			for id, n := range b.counts {
				d.long[id] -= uint64(n)
				if d.long[id] == 0 {
					delete(d.ids, d.keys[id])
					d.keys[id] = ""
					d.free = append(d.free, id)
				}
			}
			clear(b.counts)
			b.t = -1
		}
	}
	b := &d.buckets[m%TopWindowMinutes]
	b.t, b.inShort = m, true
}

// top returns the TopN largest counts of the short or long window, ties by key.
func (d *dimension) top(short bool) []Count {
	counts := d.long
	if short {
		counts = d.short
	}
	var all []Count
	for id, n := range counts {
		if n > 0 {
			all = append(all, Count{Key: d.keys[id], N: n})
		}
	}
	slices.SortFunc(all, func(a, b Count) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if all == nil {
		return []Count{}
	}
	return slices.Clip(all[:min(len(all), TopN)])
}

// recentIDs remembers the last MaxRecentIDs event ids of a site (as 64-bit
// digests of the UUID; a false match among 32k random ids has a probability
// below 10^-10).
type recentIDs struct {
	set  map[uint64]struct{}
	ring []uint64
	next int
}

// insert adds id and reports whether it was new.
func (r *recentIDs) insert(id uuid.UUID) bool {
	k := binary.LittleEndian.Uint64(id[:8]) ^ binary.LittleEndian.Uint64(id[8:])
	if _, ok := r.set[k]; ok {
		return false
	}
	if len(r.ring) < MaxRecentIDs {
		r.ring = append(r.ring, k)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % MaxRecentIDs
	}
	r.set[k] = struct{}{}
	return true
}
