package ingest

import "sync"

// ackTracker turns commits of frames (in any order) into cumulative acks.
type ackTracker struct {
	mu      sync.Mutex
	pending []ackFrame    // in seq order
	acked   int64         // highest seq whose frames up to it are all answered
	sent    int64         // highest seq handed to the writer
	unsent  int           // frames answered since the last take
	signal  chan struct{} // if not nil, told of frames to answer
	// start, if not nil, starts a writer when there are frames to answer
	// and none is running (writing); false if it did not.
	start   func() bool
	writing bool
}

type ackFrame struct {
	seq  int64
	done bool
}

// push records a received events frame; done frames need no commit.
func (a *ackTracker) push(seq int64, done bool) {
	a.mu.Lock()
	a.pending = append(a.pending, ackFrame{seq, done})
	a.advance()
	a.mu.Unlock()
}

// commit marks frame seq as committed.
func (a *ackTracker) commit(seq int64) {
	a.mu.Lock()
	for i := range a.pending {
		if a.pending[i].seq == seq {
			a.pending[i].done = true
			break
		}
	}
	a.advance()
	a.mu.Unlock()
}

func (a *ackTracker) advance() {
	n := 0
	for n < len(a.pending) && a.pending[n].done {
		a.acked = a.pending[n].seq
		n++
	}
	if n == 0 {
		return
	}
	a.pending = append(a.pending[:0], a.pending[n:]...)
	a.unsent += n
	if a.signal != nil {
		select {
		case a.signal <- struct{}{}:
		default:
		}
	}
	if a.start != nil && !a.writing {
		a.writing = a.start()
	}
}

// take returns the seq to acknowledge and how many frames it answers (0: none new).
func (a *ackTracker) take() (int64, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.takeLocked()
}

func (a *ackTracker) takeLocked() (int64, int) {
	n := a.unsent
	a.unsent = 0
	if a.acked <= a.sent {
		return a.sent, n
	}
	a.sent = a.acked
	return a.acked, n
}

// takeOrStop is take for the writer: with nothing to answer, the writer
// stops (and the next answered frame starts another).
func (a *ackTracker) takeOrStop() (int64, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq, n := a.takeLocked()
	if n == 0 {
		a.writing = false
	}
	return seq, n
}

func (a *ackTracker) pendingCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending) + a.unsent
}
