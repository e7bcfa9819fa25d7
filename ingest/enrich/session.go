package enrich

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/dchest/siphash"
	"github.com/google/uuid"
)

// Session defaults.
const (
	// DefaultSessionTimeout ends a visit after this long without an event.
	DefaultSessionTimeout = 30 * time.Minute
	// DefaultMaxSessions bounds the visits one node tracks at once (about 80
	// bytes each); beyond it, see Sessions.
	DefaultMaxSessions = 1_000_000
	// sessionSweepInterval is how often expired visits are forgotten.
	sessionSweepInterval = time.Minute
)

type sessionKey struct {
	site    uuid.UUID
	visitor uint64
}

type sessionState struct {
	id       uint64
	lastSeen time.Time
}

// Sessions assigns visits: a visitor's events belong to one session until 30
// minutes pass without an event. The session id is derived from the site, the
// visitor id and the time the visit started, so it never repeats.
//
// The state is per node. A tracker's events travel over one WebSocket to one
// node, so its visits are whole; events of one visitor that reach two nodes
// over HTTP start a session on each (route by client address to avoid it).
// When MaxSessions visits are open, a new visitor's session id falls back to
// the visitor id and the 30-minute period, which splits a visit at most once
// more, and Overflowed counts it.
type Sessions struct {
	timeout    time.Duration
	max        int
	mu         sync.Mutex
	open       map[sessionKey]*sessionState
	overflowed uint64
}

// NewSessions returns a tracker with the given timeout and bound (zero: defaults).
func NewSessions(timeout time.Duration, max int) *Sessions {
	if timeout <= 0 {
		timeout = DefaultSessionTimeout
	}
	if max <= 0 {
		max = DefaultMaxSessions
	}
	return &Sessions{timeout: timeout, max: max, open: map[sessionKey]*sessionState{}}
}

// Touch records an event of visitor on site at t and returns its session id.
// Events may arrive slightly out of order; one older than the open visit's
// last event stays in that visit.
func (s *Sessions) Touch(site uuid.UUID, visitor uint64, t time.Time) uint64 {
	key := sessionKey{site, visitor}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.open[key]
	if ok && t.Sub(st.lastSeen) < s.timeout {
		if t.After(st.lastSeen) {
			st.lastSeen = t
		}
		return st.id
	}
	id := sessionID(site, visitor, t)
	if !ok && len(s.open) >= s.max {
		s.sweepLocked(t)
		if len(s.open) >= s.max {
			s.overflowed++
			return sessionID(site, visitor, t.Truncate(s.timeout))
		}
	}
	s.open[key] = &sessionState{id: id, lastSeen: t}
	return id
}

// Open returns how many visits are open.
func (s *Sessions) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Overflowed returns how many visits started while the tracker was full.
func (s *Sessions) Overflowed() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overflowed
}

// Sweep forgets visits idle for longer than the timeout at now.
func (s *Sessions) Sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
}

func (s *Sessions) sweepLocked(now time.Time) {
	for k, st := range s.open {
		if now.Sub(st.lastSeen) >= s.timeout {
			delete(s.open, k)
		}
	}
}

// Run sweeps expired visits every minute until ctx ends.
func (s *Sessions) Run(ctx context.Context) error {
	t := time.NewTicker(sessionSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.Sweep(now)
		}
	}
}

func sessionID(site uuid.UUID, visitor uint64, start time.Time) uint64 {
	var b [32]byte
	copy(b[:16], site[:])
	binary.LittleEndian.PutUint64(b[16:24], visitor)
	binary.LittleEndian.PutUint64(b[24:], uint64(start.UnixMilli()))
	return siphash.Hash(0x70756c7365, 0x73657373696f6e, b[:])
}
