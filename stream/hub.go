package stream

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

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

	fan []*subscriber // the tick goroutine's fan-out list, reused
	// fanoutWriters is how many goroutines write one fan-out (GOMAXPROCS).
	fanoutWriters int
}

// New returns a hub reading events from cfg.Bus, authorizing subscribers
// with t (an *auth.Store), and registering its metrics with reg.
func New(cfg Config, t Tenancy, reg prometheus.Registerer) *Hub {
	cfg.withDefaults()
	h := &Hub{cfg: cfg, tenancy: t, m: newMetrics(reg), sites: make(map[uuid.UUID]*site),
		tenants: make(map[uuid.UUID]int), subs: make(map[*subscriber]struct{}), fanoutWriters: runtime.GOMAXPROCS(0)}
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
		s = &site{id: id, st: newState(id, &h.cfg, time.Now()), dirty: true}
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

// Run pushes changed state to subscribers every Tick, pings them and checks
// their access every PingInterval, and frees idle sites, until ctx ends.
// Subscribers are closed by Shutdown.
func (h *Hub) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.Tick)
	defer t.Stop()
	defer h.unsub()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { h.housekeep(ctx) })
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
		h.fan = h.publish(s, now, h.fan[:0])
	}
	clear(h.fan)
	h.m.tick.Observe(time.Since(now).Seconds())
}

// publish publishes the site's changes at now to its subscribers (buf is
// scratch space, returned for reuse). Frames are written outside the site's
// lock, so that ingest never waits for a fan-out.
func (h *Hub) publish(s *site, now time.Time, buf []*subscriber) []*subscriber {
	s.mu.Lock()
	if len(s.subs) == 0 {
		s.mu.Unlock()
		return buf
	}
	frames, ok := h.publishLocked(s, now)
	if ok {
		buf = append(buf, s.subs...)
	}
	s.mu.Unlock()
	if ok {
		h.deliver(buf, frames)
	}
	return buf
}

// deliver offers each subscriber the frame of its views, split over
// fanoutWriters goroutines when there are many. It never blocks on a
// subscriber; it returns when every subscriber has been offered its frame,
// so frames of consecutive ticks reach a subscriber in order.
func (h *Hub) deliver(subs []*subscriber, frames viewFrames) {
	if len(frames) == 0 {
		return
	}
	w := min(h.fanoutWriters, len(subs)/minFanoutShare)
	if w <= 1 {
		h.m.sent(frames[0].f, offerAll(subs, frames))
		return
	}
	var wg sync.WaitGroup
	var n atomic.Int64
	share := (len(subs) + w - 1) / w
	for i := share; i < len(subs); i += share {
		part := subs[i:min(i+share, len(subs))]
		wg.Go(func() { n.Add(int64(offerAll(part, frames))) })
	}
	n.Add(int64(offerAll(subs[:share], frames)))
	wg.Wait()
	h.m.sent(frames[0].f, int(n.Load()))
}

// minFanoutShare is the fewest subscribers worth a writer goroutine of
// their own in a fan-out (each write is a system call of a few µs).
const minFanoutShare = 256

// offerAll offers each subscriber its frame and returns how many took it.
func offerAll(subs []*subscriber, frames viewFrames) int {
	n := 0
	for _, sub := range subs {
		if sub.offer(frames.of(sub.views)) {
			n++
		}
	}
	return n
}

// housekeep pings every subscriber every PingInterval, re-checks its access
// then, closes it when its credential expires, and notices SSE clients that
// have gone, until ctx ends.
func (h *Hub) housekeep(ctx context.Context) {
	every := min(time.Second, h.cfg.PingInterval/2)
	t := time.NewTicker(every)
	defer t.Stop()
	var subs []*subscriber
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		subs = subs[:0]
		for s := range h.subs {
			subs = append(subs, s)
		}
		h.mu.Unlock()
		now := time.Now()
		for _, s := range subs {
			switch t := now.UnixNano(); {
			case s.expires != 0 && t >= s.expires:
				s.end(CloseTokenExpired, "token expired")
			case s.peer != nil && peerClosed(s.peer):
				s.stop(CloseGoingAway, "connection lost", true, 0)
			case s.nextPing == 0:
				s.nextPing = t + int64(h.cfg.PingInterval)
			case t >= s.nextPing:
				s.nextPing = t + int64(h.cfg.PingInterval)
				if s.cred.raw != "" {
					if code, reason, ok := h.checkAccess(s); !ok {
						s.end(code, reason)
						continue
					}
				}
				s.keepAlive()
			}
		}
		clear(subs)
	}
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

// acquire takes one of the tenant's live subscriber slots.
func (h *Hub) acquire(tenant uuid.UUID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing || h.tenants[tenant] >= h.cfg.MaxSubscribersPerTenant {
		return false
	}
	h.tenants[tenant]++
	return true
}

// release gives back the slots admit took for sub (call it once).
func (h *Hub) release(sub *subscriber) {
	h.mu.Lock()
	h.tenants[sub.tenant]--
	if h.tenants[sub.tenant] == 0 {
		delete(h.tenants, sub.tenant)
	}
	h.mu.Unlock()
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

// liveSlots is the number of live subscriber slots tenant holds.
func (h *Hub) liveSlots(tenant uuid.UUID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tenants[tenant]
}
