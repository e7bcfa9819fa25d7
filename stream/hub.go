package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Hub keeps the live state of every site on this node and pushes it to the
// subscribers of WS /v1/live and GET /v1/live/sse: a snapshot when they
// subscribe, then a delta every tick in which something changed.
type Hub struct {
	cfg        Config
	tenancy    Tenancy
	m          *metrics
	unsub      func()
	upgrade    fiber.Handler
	liveOrigin fiber.Handler

	mu      sync.Mutex
	sites   map[uuid.UUID]*site
	tenants map[uuid.UUID]int // live subscribers per tenant
	subs    map[*subscriber]struct{}
	closing bool
	wg      sync.WaitGroup // one per subscriber
}

// New returns a hub reading events from cfg.Bus, authorizing subscribers
// with t (an *auth.Store), and registering its metrics with reg.
func New(cfg Config, t Tenancy, reg prometheus.Registerer) *Hub {
	cfg.withDefaults()
	h := &Hub{cfg: cfg, tenancy: t, m: newMetrics(reg), sites: make(map[uuid.UUID]*site),
		tenants: make(map[uuid.UUID]int), subs: make(map[*subscriber]struct{})}
	h.unsub = cfg.Bus.Subscribe(uuid.Nil, h.receive)
	h.upgrade = h.newUpgrader()
	if t != nil {
		h.liveOrigin = t.LiveOrigin()
	}
	return h
}

// Publish hands events accepted for site to the live state (through the
// bus). It does not block on subscribers and does not keep events.
func (h *Hub) Publish(site uuid.UUID, events []Event) {
	if len(events) > 0 {
		h.cfg.Bus.Publish(site, Message{Events: events})
	}
}

// Connected reports that tracker connection conn of site opened. conn is a
// number unique on this node for the connection's lifetime; events sent over
// it carry it in Event.Conn.
func (h *Hub) Connected(site uuid.UUID, conn uint64) { h.presence(site, Connected, conn) }

// Heartbeat reports a sign of life (ping, pong, frame) of a tracker connection.
func (h *Hub) Heartbeat(site uuid.UUID, conn uint64) { h.presence(site, Heartbeat, conn) }

// Disconnected reports that a tracker connection ended.
func (h *Hub) Disconnected(site uuid.UUID, conn uint64) { h.presence(site, Disconnected, conn) }

func (h *Hub) presence(site uuid.UUID, k PresenceKind, conn uint64) {
	h.cfg.Bus.Publish(site, Message{Presence: []Presence{{Kind: k, Conn: conn, At: time.Now()}}})
}

// receive applies one bus message to the site's state.
func (h *Hub) receive(id uuid.UUID, msg Message) {
	s := h.lockedSite(id)
	now := time.Now()
	counted, dups := 0, 0
	s.st.advance(now)
	for i := range msg.Events {
		if s.st.add(&msg.Events[i]) {
			counted++
		} else {
			dups++
		}
	}
	for _, p := range msg.Presence {
		s.st.presence(p)
	}
	if counted > 0 || len(msg.Presence) > 0 {
		s.dirty = true
	}
	s.mu.Unlock()
	h.m.events.Add(float64(counted))
	h.m.duplicates.Add(float64(dups))
}

// site returns the live site id, creating it when create is set.
func (h *Hub) site(id uuid.UUID, create bool) *site {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sites[id]
	if s == nil && create {
		s = &site{id: id, st: newState(id, &h.cfg, time.Now()), subs: make(map[*subscriber]struct{}), dirty: true}
		h.sites[id] = s
		h.m.sites.Set(float64(len(h.sites)))
	}
	return s
}

// lockedSite returns the live site id, created when missing, with its lock
// held; it never returns a site that sweep has just freed.
func (h *Hub) lockedSite(id uuid.UUID) *site {
	for {
		s := h.site(id, true)
		s.mu.Lock()
		if !s.removed {
			return s
		}
		s.mu.Unlock()
	}
}

// Run pushes changed state to subscribers every Tick and frees idle sites,
// until ctx ends. Subscribers are closed by Shutdown.
func (h *Hub) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.Tick)
	defer t.Stop()
	defer h.unsub()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			h.tick(time.Now())
			if now.Sub(lastSweep) >= time.Minute {
				h.sweep(time.Now())
				lastSweep = now
			}
		}
	}
}

// tick publishes every site's changes.
func (h *Hub) tick(now time.Time) {
	h.mu.Lock()
	sites := make([]*site, 0, len(h.sites))
	for _, s := range h.sites {
		sites = append(sites, s)
	}
	h.mu.Unlock()
	for _, s := range sites {
		s.mu.Lock()
		if len(s.subs) > 0 {
			h.publishLocked(s, now)
		}
		s.mu.Unlock()
	}
	h.m.tick.Observe(time.Since(now).Seconds())
}

// sweep frees sites nobody watches that had no event for IdleSiteTTL.
func (h *Hub) sweep(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, s := range h.sites {
		s.mu.Lock()
		idle := len(s.subs) == 0 && now.Sub(s.st.lastEvent) > h.cfg.IdleSiteTTL && len(s.st.conns) == 0
		if !idle {
			s.st.advance(now)
			s.st.sweepPresence(now)
		}
		if idle {
			s.removed = true
			delete(h.sites, id)
		}
		s.mu.Unlock()
	}
	h.m.sites.Set(float64(len(h.sites)))
}

// site is one site's live state and subscribers.
type site struct {
	id uuid.UUID

	mu      sync.Mutex
	st      *state
	dirty   bool // events or presence since the last publish
	removed bool // freed by sweep: look the site up again
	lastSec int64
	seq     uint64
	base    *Snapshot   // the state at seq, every view
	history []published // the last Config.History published states, oldest first
	// catchUps caches the catch-up frames built for seq catchSeq.
	catchSeq uint64
	catchUps map[catchKey]*frame
	subs     map[*subscriber]struct{}
}

type published struct {
	seq  uint64
	snap *Snapshot
}

// publishLocked computes the site's state at now and, when it changed,
// makes it sequence number seq+1 and queues the delta to every subscriber.
func (h *Hub) publishLocked(s *site, now time.Time) {
	s.st.advance(now)
	sec := now.Unix()
	if !s.dirty && sec == s.lastSec && s.base != nil {
		return
	}
	if sec != s.lastSec {
		s.st.sweepPresence(now)
	}
	s.lastSec, s.dirty = sec, false
	cur := s.st.snapshot()
	if s.base == nil {
		s.seq++
		s.base = cur
		s.remember()
		return
	}
	d, changed := Diff(s.base, cur)
	if !changed {
		return
	}
	prev := s.seq
	s.seq++
	s.base = cur
	s.remember()
	frames := make(map[View]*frame)
	for sub := range s.subs {
		f := frames[sub.views]
		if f == nil {
			fd, _ := d.Filter(sub.views)
			f = h.encodeDelta(s.id, s.seq, prev, 0, &fd)
			frames[sub.views] = f
		}
		sub.push(f)
	}
}

func (s *site) remember() {
	if len(s.history) == cap(s.history) && len(s.history) > 0 {
		copy(s.history, s.history[1:])
		s.history = s.history[:len(s.history)-1]
	}
	s.history = append(s.history, published{seq: s.seq, snap: s.base})
}

// Frames on the wire (docs/protocol.md, live stream, "Frames").
type snapshotFrame struct {
	Type   string    `json:"type"`
	Site   uuid.UUID `json:"site"`
	Seq    uint64    `json:"seq"`
	Missed uint64    `json:"missed"`
	TickMS int64     `json:"tick_ms"`
	State  *Snapshot `json:"state"`
}

type deltaFrame struct {
	Type    string    `json:"type"`
	Site    uuid.UUID `json:"site"`
	Seq     uint64    `json:"seq"`
	Prev    uint64    `json:"prev"`
	Missed  uint64    `json:"missed,omitempty"`
	Changes *Delta    `json:"changes"`
}

// frame is one encoded frame queued to subscribers; frames are shared and
// never changed once built.
type frame struct {
	seq, prev uint64
	snapshot  bool
	missed    uint64
	data      []byte
	once      sync.Once
	pm        *websocket.PreparedMessage
}

// prepared returns the frame as a WebSocket message framed once for every
// subscriber that shares it.
func (f *frame) prepared() (*websocket.PreparedMessage, error) {
	var err error
	f.once.Do(func() { f.pm, err = websocket.NewPreparedMessage(websocket.TextMessage, f.data) })
	if f.pm == nil && err == nil {
		err = errors.New("stream: frame could not be prepared")
	}
	return f.pm, err
}

func (h *Hub) encodeDelta(site uuid.UUID, seq, prev, missed uint64, d *Delta) *frame {
	data, err := json.Marshal(deltaFrame{Type: "delta", Site: site, Seq: seq, Prev: prev, Missed: missed, Changes: d})
	if err != nil {
		panic(fmt.Sprintf("stream: encode delta: %v", err)) // plain structs: cannot fail
	}
	return &frame{seq: seq, prev: prev, missed: missed, data: data}
}

func (h *Hub) encodeSnapshot(site uuid.UUID, seq, missed uint64, snap *Snapshot) *frame {
	data, err := json.Marshal(snapshotFrame{Type: "snapshot", Site: site, Seq: seq, Missed: missed,
		TickMS: h.cfg.Tick.Milliseconds(), State: snap})
	if err != nil {
		panic(fmt.Sprintf("stream: encode snapshot: %v", err))
	}
	return &frame{seq: seq, snapshot: true, missed: missed, data: data}
}

// subscribe adds sub to its site and queues its first snapshot.
func (h *Hub) subscribe(sub *subscriber) {
	s := h.lockedSite(sub.siteID)
	defer s.mu.Unlock()
	if cap(s.history) != h.cfg.History {
		s.history = make([]published, 0, h.cfg.History)
	}
	h.publishLocked(s, time.Now())
	sub.site = s
	s.subs[sub] = struct{}{}
	snap := s.base.Filter(sub.views)
	sub.push(h.encodeSnapshot(s.id, s.seq, 0, &snap))
}

func (h *Hub) unsubscribe(sub *subscriber) {
	if s := sub.site; s != nil {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}
}

// catchUp builds the frame that takes a subscriber from seq from to the
// site's current state: one delta when from is still in the history
// (coalesced), a snapshot otherwise (resync); nil when from is current.
func (h *Hub) catchUp(sub *subscriber, from uint64) *frame {
	s := sub.site
	s.mu.Lock()
	defer s.mu.Unlock()
	if from == s.seq {
		return nil
	}
	if s.catchSeq != s.seq || s.catchUps == nil {
		// Subscribers that fell behind together share one encoding.
		s.catchSeq, s.catchUps = s.seq, make(map[catchKey]*frame)
	}
	key := catchKey{from: from, views: sub.views}
	f := s.catchUps[key]
	if f == nil {
		f = h.buildCatchUp(s, from, sub.views)
		s.catchUps[key] = f
	}
	if f.snapshot {
		h.m.resyncs.Inc()
	}
	return f
}

type catchKey struct {
	from  uint64
	views View
}

func (h *Hub) buildCatchUp(s *site, from uint64, views View) *frame {
	var missed uint64
	if from != 0 { // 0: the subscriber has not received its first snapshot
		missed = s.seq - from - 1
	}
	for _, p := range s.history {
		if p.seq == from {
			d, _ := Diff(p.snap, s.base)
			fd, _ := d.Filter(views)
			return h.encodeDelta(s.id, s.seq, from, missed, &fd)
		}
	}
	snap := s.base.Filter(views)
	return h.encodeSnapshot(s.id, s.seq, missed, &snap)
}

// acquire takes one of the tenant's live subscriber slots.
func (h *Hub) acquire(tenant uuid.UUID) (release func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing || h.tenants[tenant] >= h.cfg.MaxSubscribersPerTenant {
		return func() {}, false
	}
	h.tenants[tenant]++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			h.tenants[tenant]--
			if h.tenants[tenant] == 0 {
				delete(h.tenants, tenant)
			}
			h.mu.Unlock()
		})
	}, true
}

// track registers a running subscriber for Shutdown; false when shutting down.
func (h *Hub) track(sub *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.subs[sub] = struct{}{}
	h.wg.Add(1)
	h.m.subscribers.Inc()
	return true
}

func (h *Hub) untrack(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
	h.m.subscribers.Dec()
	h.wg.Done()
}

// Shutdown stops accepting subscribers, closes every open one with
// CloseGoingAway, and waits until they have ended or ctx (or ShutdownGrace)
// ends.
func (h *Hub) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ShutdownGrace)
	defer cancel()
	h.mu.Lock()
	h.closing = true
	subs := make([]*subscriber, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.end(CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }() // owned: waited on below
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, s := range subs {
			s.kill()
		}
		<-done
		return fmt.Errorf("stream: shutdown: subscribers still open after the grace period: %w", ctx.Err())
	}
}
