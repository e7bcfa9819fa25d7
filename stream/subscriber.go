package stream

import (
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// subscriber is one live subscription (a WebSocket or an SSE stream).
//
// The hub never waits for a subscriber, and an idle subscriber has no
// goroutine of its own besides its connection's reader. The hub offers each
// frame (offer); when nobody is writing to the subscriber and its socket
// takes the frame without blocking — the usual case — the frame is written
// right there. Otherwise the frame waits in a bounded queue and a flusher
// goroutine takes over (drain): it writes with the stall timeout, coalesces
// what queued up meanwhile, and exits when the queue is empty. At most one
// writer holds the output at a time (busy): the hub for the length of a
// non-blocking write, a flusher, or the connection's own goroutine.
type subscriber struct {
	hub    *Hub
	siteID uuid.UUID
	views  View
	site   *site // set by Hub.subscribe
	idx    int   // index in site.subs, under site.mu
	out    sink
	// wake, when set, is how a flusher is asked for: the SSE stream's own
	// goroutine writes. Without it (WebSockets) a flusher goroutine is started.
	wake chan struct{}
	// peer, when set, is checked for a client that has gone: an SSE stream
	// is never read, so nothing else would notice before a write fails.
	peer syscall.RawConn

	// cred is re-validated at every ping (Hub.checkAccess); it expires at
	// expires (Unix ns; 0: never).
	cred    credential
	expires int64
	// tenant's live slot is given back by Hub.release.
	tenant uuid.UUID
	// nextPing is when the housekeeper pings next (Unix ns; its goroutine only).
	nextPing int64

	mu       sync.Mutex
	busy     bool // a writer holds the output
	queue    []*frame
	queued   int    // bytes in queue
	resync   bool   // the queue overflowed: send one catch-up frame instead
	maxSeen  int    // largest queued bytes observed (tests, benchmarks)
	pending  []byte // the rest of a frame the socket took only part of
	sent     uint64 // seq of the last frame handed to the socket; 0 before the snapshot
	pongs    int    // {"type":"ping"} frames to answer
	ping     bool   // a keep-alive ping is due
	ctrl     []byte // a control frame to send (the answer to a WebSocket ping)
	ending   bool   // end was called: write the close, then nothing more
	gone     bool   // the connection is lost or stalled: write nothing more
	finished bool   // fin is done
	code     int
	reason   string
	echo     int            // the client's close code, echoed in the close frame
	fin      sync.WaitGroup // done when finished
	flushers sync.WaitGroup
}

func newSubscriber(h *Hub, site uuid.UUID, views View, out sink) *subscriber {
	s := &subscriber{hub: h, siteID: site, views: views, out: out}
	s.fin.Add(1)
	return s
}

// sink is where a subscriber's bytes go: a WebSocket or an SSE stream.
type sink interface {
	// encode returns f as this sink sends it.
	encode(f *frame) []byte
	// ping, pong and closing return a keep-alive, the answer to a client's
	// {"type":"ping"}, and the closing frame; nil when the sink has none.
	ping() []byte
	pong() []byte
	closing(code int, reason string) []byte
	// tryWrite writes the part of b the connection takes at once, without
	// blocking (0 when it cannot write without blocking at all).
	tryWrite(b []byte) (int, error)
	// write writes b, failing when it blocks past deadline.
	write(b []byte, deadline time.Time) error
	// interrupt wakes the connection's reader when the subscriber ends, at
	// the latest after the time it has to read the client's answer to the
	// close frame; abort fails a read or write in progress at once
	// (Shutdown's last resort).
	interrupt()
	abort()
}

// closeWriteTimeout bounds writing the close frame of a subscriber that ends.
const closeWriteTimeout = time.Second

// offer hands f to the subscriber: written at once when the output is free
// and the socket takes it without blocking, queued otherwise. It never
// blocks. It reports whether f went to the socket.
func (s *subscriber) offer(f *frame) bool {
	s.mu.Lock()
	if s.ending {
		s.mu.Unlock()
		return false
	}
	if s.busy || (!f.snapshot && f.prev != s.sent) {
		s.pushLocked(f)
		s.kickLocked()
		return false
	}
	s.busy, s.sent = true, f.seq
	s.mu.Unlock()
	b := s.out.encode(f)
	n, err := s.out.tryWrite(b)
	if err != nil {
		s.fail(err) // we hold the output: the flusher started below finishes
	}
	s.mu.Lock()
	if err == nil && n < len(b) {
		s.pending = b[n:]
	}
	s.releaseLocked()
	return err == nil
}

// pushLocked queues f; when the queue is full, the pending frames are
// dropped and one catch-up frame is sent instead (coalescing).
func (s *subscriber) pushLocked(f *frame) {
	switch {
	case s.resync:
	case len(s.queue) >= s.hub.cfg.QueueFrames || s.queued+len(f.data) > s.hub.cfg.QueueBytes:
		s.clearQueueLocked()
		s.resync = true
		s.hub.m.coalesced.Inc()
	default:
		s.queue = append(s.queue, f)
		s.queued += len(f.data)
		s.maxSeen = max(s.maxSeen, s.queued)
	}
}

func (s *subscriber) clearQueueLocked() {
	clear(s.queue)
	s.queue, s.queued = s.queue[:0], 0
}

// kickLocked makes sure a writer will see what was just queued: when
// nobody holds the output, a flusher takes it. It unlocks s.mu.
func (s *subscriber) kickLocked() {
	if s.busy {
		s.mu.Unlock()
		return
	}
	s.busy = true
	s.mu.Unlock()
	s.startFlusher()
}

// releaseLocked gives up the output after a non-blocking write; a flusher
// takes it over when there is more to write. It unlocks s.mu.
func (s *subscriber) releaseLocked() {
	if s.pending == nil && !s.ending && !s.gone && s.ctrl == nil && s.pongs == 0 && !s.ping &&
		len(s.queue) == 0 && !s.resync {
		s.busy = false
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.startFlusher()
}

// startFlusher hands the output (busy) to a goroutine that may block.
func (s *subscriber) startFlusher() {
	if s.wake != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return
	}
	s.flushers.Go(func() { s.drain() }) // owned: waited on by wait
}

// drain writes what is due while its caller holds the output, and then
// gives the output up. It may block for up to the stall timeout per write.
// It reports whether the subscriber has finished (it ended and its close was
// written, or could not be); the output is then never given up.
func (s *subscriber) drain() (finished bool) {
	h := s.hub
	for {
		var b []byte
		var f *frame
		catchUp, from := false, uint64(0)
		s.mu.Lock()
		switch {
		case s.gone:
			return s.finishLocked()
		case s.pending != nil: // finish the frame the socket took part of
			b, s.pending = s.pending, nil
		case s.ending:
			code, reason := s.code, s.reason
			if s.echo != 0 {
				code, reason = s.echo, ""
			}
			s.mu.Unlock()
			if c := s.out.closing(code, reason); c != nil {
				_ = s.out.write(c, time.Now().Add(closeWriteTimeout))
			}
			s.mu.Lock()
			return s.finishLocked()
		case s.ctrl != nil:
			b, s.ctrl = s.ctrl, nil
		case s.pongs > 0:
			s.pongs--
			b = s.out.pong()
		case s.ping:
			s.ping = false
			b = s.out.ping()
		case s.resync: // from the last frame delivered (a snapshot when none was)
			s.resync = false
			catchUp, from = true, s.sent
		case len(s.queue) > 1 && s.sent != 0 && !s.queue[0].snapshot:
			// Behind by more than one delta: one catch-up delta to the latest
			// state costs the client one frame instead of several.
			s.clearQueueLocked()
			h.m.coalesced.Inc()
			catchUp, from = true, s.sent
		case len(s.queue) > 0:
			f = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.queued -= len(f.data)
			if len(s.queue) == 0 {
				s.queue = s.queue[:0:0] // let the backing array go with its last frame
			}
			if !f.snapshot && f.prev != s.sent {
				if f.seq > s.sent {
					s.resync = true // a gap: frames were dropped while a catch-up was built
				} // else: already covered by a catch-up frame
				s.mu.Unlock()
				continue
			}
			s.sent = f.seq
		default:
			s.busy = false
			s.mu.Unlock()
			return false
		}
		s.mu.Unlock()
		if catchUp {
			if f = h.catchUp(s, from); f == nil {
				continue
			}
			s.mu.Lock()
			s.sent = f.seq
			s.mu.Unlock()
		}
		if f != nil {
			b = s.out.encode(f)
			h.m.sent(f, 1)
		}
		if b == nil {
			continue
		}
		if err := s.out.write(b, time.Now().Add(h.cfg.StallTimeout)); err != nil {
			s.fail(err)
		}
	}
}

// finishLocked ends the subscriber's output for good. It unlocks s.mu.
func (s *subscriber) finishLocked() bool {
	s.clearQueueLocked()
	s.pending, s.ctrl = nil, nil
	first := !s.finished
	s.finished = true
	code := s.code
	s.mu.Unlock()
	if first {
		s.fin.Done()
		s.hub.m.closed(code)
	}
	return true
}

// answer queues the answer to a client's {"type":"ping"} (pong) or
// WebSocket ping (ctrl) and writes it from the caller's goroutine, which
// may block, when nobody holds the output.
func (s *subscriber) answer(ctrl []byte) {
	s.mu.Lock()
	if s.ending {
		s.mu.Unlock()
		return
	}
	if ctrl != nil {
		s.ctrl = ctrl
	} else {
		s.pongs++
	}
	if s.busy {
		s.mu.Unlock()
		return
	}
	s.busy = true
	s.mu.Unlock()
	s.drain()
}

// keepAlive queues a ping (the housekeeper's, never blocking).
func (s *subscriber) keepAlive() {
	s.mu.Lock()
	if s.ending {
		s.mu.Unlock()
		return
	}
	s.ping = true
	s.kickLocked()
}

// queuedBytes is the bytes waiting in the queue.
func (s *subscriber) queuedBytes() (now, peak int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued, s.maxSeen
}

// end asks the subscriber to close with code (the first call wins): its
// close frame is written after the frame in progress, and its reader is
// woken.
func (s *subscriber) end(code int, reason string) { s.stop(code, reason, false, 0) }

// stop ends the subscriber; gone says that nothing can be written anymore
// (the connection is lost or stalled), echo is a close code the client sent.
func (s *subscriber) stop(code int, reason string, gone bool, echo int) {
	s.mu.Lock()
	if s.code == 0 {
		s.code, s.reason, s.echo = code, reason, echo
	}
	first := !s.ending
	s.ending = true
	s.gone = s.gone || gone
	s.kickLocked() // a flusher writes the close (or finishes at once when gone)
	if first && s.out != nil {
		s.out.interrupt()
	}
}

func (s *subscriber) closeReason() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code, s.reason
}

func (s *subscriber) isEnding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ending
}

// kill drops the connection without a close handshake (Shutdown's last resort).
func (s *subscriber) kill() {
	s.stop(CloseGoingAway, "server shutting down", true, 0)
	if s.out != nil {
		s.out.abort()
	}
}

// wait returns when the subscriber has finished and its flushers have returned.
func (s *subscriber) wait() {
	s.fin.Wait()
	s.flushers.Wait()
}

// fail ends the subscriber after a write error: a write that hit its
// deadline means the client stopped reading (CloseStalled; a close frame
// cannot get through); any other error means the connection is gone.
func (s *subscriber) fail(err error) {
	if isTimeout(err) {
		s.stop(CloseStalled, "stalled: a write blocked for longer than the stall timeout", true, 0)
		return
	}
	s.stop(CloseGoingAway, "connection lost", true, 0)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
