package stream

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

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
	subs     []*subscriber
}

type published struct {
	seq  uint64
	snap *Snapshot
}

// publishLocked computes the site's state at now and, when it changed,
// makes it sequence number seq+1 and returns its delta encoded once for each
// views its subscribers have.
func (h *Hub) publishLocked(s *site, now time.Time) (viewFrames, bool) {
	s.st.advance(now)
	sec := now.Unix()
	if !s.dirty && sec == s.lastSec && s.base != nil {
		return nil, false
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
		return nil, false
	}
	d, changed := Diff(s.base, cur)
	if !changed {
		return nil, false
	}
	prev := s.seq
	s.seq++
	s.base = cur
	s.remember()
	var frames viewFrames
	for _, sub := range s.subs {
		if frames.of(sub.views) == nil {
			fd, _ := d.Filter(sub.views)
			frames = append(frames, viewFrame{sub.views, h.encodeDelta(s.id, s.seq, prev, 0, &fd)})
		}
	}
	return frames, true
}

func (s *site) remember() {
	if len(s.history) == cap(s.history) && len(s.history) > 0 {
		copy(s.history, s.history[1:])
		s.history = s.history[:len(s.history)-1]
	}
	s.history = append(s.history, published{seq: s.seq, snap: s.base})
}

// subscribe adds sub to its site and queues its first snapshot. It reports
// whether the caller then holds sub's output and must drain it (to write the
// snapshot); it does not when sub has already ended (a flusher closes it).
func (h *Hub) subscribe(sub *subscriber) bool {
	s := h.lockedSite(sub.siteID)
	defer s.mu.Unlock()
	if cap(s.history) != h.cfg.History {
		s.history = make([]published, 0, h.cfg.History)
	}
	if len(s.subs) == 0 {
		// Nobody watched: bring the state up to date (no one to send a delta
		// to). Otherwise the last tick's state is at most a tick old, and the
		// next tick brings this subscriber along with the others.
		h.publishLocked(s, time.Now())
	}
	sub.site = s
	sub.idx = len(s.subs)
	s.subs = append(s.subs, sub)
	snap := s.base.Filter(sub.views)
	f := h.encodeSnapshot(s.id, s.seq, 0, &snap)
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.busy { // ended already: its flusher holds the output
		return false
	}
	sub.busy = true
	sub.queue = append(sub.queue, f) // the first frame, whatever the queue bound
	sub.queued += len(f.data)
	return true
}

func (h *Hub) unsubscribe(sub *subscriber) {
	s := sub.site
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := sub.idx; i < len(s.subs) && s.subs[i] == sub {
		last := len(s.subs) - 1
		s.subs[i] = s.subs[last]
		s.subs[i].idx = i
		s.subs[last] = nil
		s.subs = s.subs[:last]
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
