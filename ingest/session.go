package ingest

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// sessions remembers, per ingest session, the highest sequence number
// acknowledged, so a client that reconnects with a resume token resends only
// the rest. Bounded: at most max sessions, each forgotten lifetime after its
// last use; when full, expired ones go first, then arbitrary ones.
type sessions struct {
	mu       sync.Mutex
	m        map[string]*sessionState
	max      int
	lifetime time.Duration
}

type sessionState struct {
	lastAcked int64
	used      time.Time
}

func newSessions(max int, lifetime time.Duration) *sessions {
	return &sessions{m: make(map[string]*sessionState), max: max, lifetime: lifetime}
}

// newSessionID returns a random session id.
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "s_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// open returns the last acknowledged sequence of session id, creating the
// session when it is unknown (0).
func (s *sessions) open(id string, now time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[id]; ok && now.Sub(st.used) < s.lifetime {
		st.used = now
		return st.lastAcked
	}
	if len(s.m) >= s.max {
		for k, st := range s.m {
			if now.Sub(st.used) >= s.lifetime {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < s.max {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[id] = &sessionState{used: now}
	return 0
}

// ack records that seq of session id is acknowledged.
func (s *sessions) ack(id string, seq int64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[id]; ok {
		st.lastAcked = max(st.lastAcked, seq)
		st.used = now
	}
}
