package stream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// subscriber is one live subscription (a WebSocket or an SSE stream). The
// hub queues frames with push and never waits for it; its own writer
// goroutine (serve) writes them.
type subscriber struct {
	hub    *Hub
	siteID uuid.UUID
	views  View
	site   *site // set by Hub.subscribe

	// check re-validates the subscriber's access at every ping; it returns
	// a close code and reason when access ended.
	check func() (int, string, bool)
	// expires is when the credential expires (zero: never).
	expires time.Time

	mu      sync.Mutex
	queue   []*frame
	queued  int  // bytes in queue
	resync  bool // the queue overflowed: send one catch-up frame instead
	maxSeen int  // largest queued bytes observed (tests, benchmarks)

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	ended  atomic.Bool
	code   int
	reason string
	pong   atomic.Int32 // client pings to answer
}

func newSubscriber(h *Hub, site uuid.UUID, views View) *subscriber {
	ctx, cancel := context.WithCancel(context.Background())
	return &subscriber{hub: h, siteID: site, views: views, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
}

// push queues f; when the queue is full, the pending frames are dropped and
// the writer sends one catch-up frame instead (coalescing).
func (s *subscriber) push(f *frame) {
	s.mu.Lock()
	switch {
	case s.resync:
	case len(s.queue) >= s.hub.cfg.QueueFrames || s.queued+len(f.data) > s.hub.cfg.QueueBytes:
		clear(s.queue)
		s.queue, s.queued, s.resync = s.queue[:0], 0, true
		s.hub.m.coalesced.Inc()
	default:
		s.queue = append(s.queue, f)
		s.queued += len(f.data)
		s.maxSeen = max(s.maxSeen, s.queued)
	}
	s.mu.Unlock()
	s.signal()
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns the queued frames, or resync when a catch-up is due.
func (s *subscriber) take(buf []*frame) (frames []*frame, resync bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resync {
		s.resync = false
		return buf[:0], true
	}
	frames = append(buf[:0], s.queue...)
	clear(s.queue)
	s.queue, s.queued = s.queue[:0], 0
	return frames, false
}

// queuedBytes is the bytes waiting in the queue.
func (s *subscriber) queuedBytes() (now, peak int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued, s.maxSeen
}

// end asks the subscriber to close with code (the first call wins).
func (s *subscriber) end(code int, reason string) {
	s.mu.Lock()
	if s.code == 0 {
		s.code, s.reason = code, reason
	}
	s.mu.Unlock()
	s.cancel()
}

func (s *subscriber) closeReason() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code, s.reason
}

// kill drops the connection without a close handshake (Shutdown's last resort).
func (s *subscriber) kill() {
	s.ended.Store(true)
	s.end(CloseGoingAway, "server shutting down")
}

// sink is where a subscriber's frames go: a WebSocket or an SSE stream.
// Every method is called from the writer goroutine only.
type sink interface {
	// write sends one frame, failing when it blocks longer than deadline.
	write(f *frame, deadline time.Time) error
	// ping sends a keep-alive (and answers pending client pings when n > 0).
	ping(deadline time.Time) error
	pong(n int, deadline time.Time) error
	// close ends the stream with a code and reason.
	close(code int, reason string)
}

// serve writes the subscriber's frames to out until the subscriber ends,
// and then closes out with the reason it ended.
func (s *subscriber) serve(out sink) {
	h := s.hub
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	var expiry <-chan time.Time
	if !s.expires.IsZero() {
		t := time.NewTimer(time.Until(s.expires))
		defer t.Stop()
		expiry = t.C
	}
	var sent uint64 // seq of the last frame written; 0 before the snapshot
	var buf []*frame
	for {
		select {
		case <-s.ctx.Done():
			code, reason := s.closeReason()
			if !s.ended.Load() {
				out.close(code, reason)
			}
			h.m.closed(code)
			return
		case <-expiry:
			s.end(CloseTokenExpired, "token expired")
			continue
		case <-ping.C:
			if s.check != nil {
				if code, reason, ok := s.check(); !ok {
					s.end(code, reason)
					continue
				}
			}
			if err := out.ping(time.Now().Add(h.cfg.StallTimeout)); err != nil {
				s.fail(err)
			}
			continue
		case <-s.wake:
		}
		if s.ctx.Err() != nil {
			continue // ending: write nothing more
		}
		if n := s.pong.Swap(0); n > 0 {
			if err := out.pong(int(n), time.Now().Add(h.cfg.StallTimeout)); err != nil {
				s.fail(err)
				continue
			}
		}
		frames, resync := s.take(buf)
		buf = frames
		if !resync && sent != 0 && len(frames) > 1 && !frames[0].snapshot {
			// Behind by more than one delta: one catch-up delta to the
			// latest state costs the client one frame instead of several.
			resync = true
			h.m.coalesced.Inc()
		}
		if resync { // from the last frame delivered (a snapshot when none was)
			frames = frames[:0]
			if f := h.catchUp(s, sent); f != nil {
				frames = append(frames, f)
			}
		}
		for _, f := range frames {
			if !f.snapshot && f.prev != sent {
				if f.seq <= sent {
					continue // already covered by a catch-up frame
				}
				// A gap: frames were dropped while a catch-up was built.
				s.mu.Lock()
				s.resync = true
				s.mu.Unlock()
				s.signal()
				break
			}
			if err := out.write(f, time.Now().Add(h.cfg.StallTimeout)); err != nil {
				s.fail(err)
				break
			}
			sent = f.seq
			if f.snapshot {
				h.m.snapshots.Inc()
			} else {
				h.m.deltas.Inc()
			}
		}
		clear(buf)
	}
}

// fail ends the subscriber after a write error: a write that hit its
// deadline means the client stopped reading (CloseStalled); any other error
// means the connection is gone.
func (s *subscriber) fail(err error) {
	if isTimeout(err) {
		s.ended.Store(true) // the peer does not read: a close frame cannot get through
		s.end(CloseStalled, "stalled: a write blocked for longer than the stall timeout")
		return
	}
	s.ended.Store(true)
	s.end(CloseGoingAway, "connection lost")
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
