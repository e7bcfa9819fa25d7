package ingest

import (
	"sync"

	"github.com/google/uuid"
)

// dedupKey is one event of one site.
type dedupKey struct{ site, id uuid.UUID }

// dedup remembers the ids of the last N events the batcher took, over all
// sites, and whether each is committed. An id is remembered only once the
// batcher holds its event (or ClickHouse has it): an id whose Add failed (the
// buffer stayed full, the connection ended) is not remembered, and one whose
// insert was given up at shutdown is forgotten, so a seen id is always held by
// something durable and a resend of it may be answered as accepted. It is a
// FIFO: the oldest id is forgotten first. Memory: about 100 bytes per entry
// (map entry plus ring slot), allocated as entries come, not up front: an
// idle node holds none.
type dedup struct {
	mu   sync.Mutex
	seen map[dedupKey]bool // true once committed
	ring []dedupKey
	size int // the most entries remembered
	next int
}

func newDedup(n int) *dedup {
	return &dedup{seen: map[dedupKey]bool{}, size: n}
}

// filter returns the events to write and, among them, the fresh ones (not
// remembered: handed to the live stream), and the number of committed
// duplicates left out. Nothing is remembered here: the caller remembers the
// written ids once the batcher holds them (rememberIDs). Seen but uncommitted
// events are written again, so that an ack never depends on another
// connection's insert; the writer stores them once. events may be reordered
// in place.
func (d *dedup) filter(site uuid.UUID, events []Event) (write, fresh []Event, dups int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	var again []Event // seen, not committed: moved behind the fresh ones
	for i := range events {
		committed, ok := d.seen[dedupKey{site, events[i].ID}]
		switch {
		case !ok:
			if n != i {
				events[n] = events[i]
			}
			n++
		case committed:
			dups++
		default:
			again = append(again, events[i])
		}
	}
	fresh = events[:n]
	write = append(events[:n], again...)
	clear(events[len(write):])
	return write, fresh, dups
}

// unseen returns the events whose ids are not remembered at all (neither
// committed nor held by the batcher), without remembering them, and how many
// were left out. The HTTP paths use it: an event it leaves out is stored or
// held by the batcher, which will store it.
func (d *dedup) unseen(site uuid.UUID, events []Event) ([]Event, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for i := range events {
		if _, ok := d.seen[dedupKey{site, events[i].ID}]; !ok {
			if n != i {
				events[n] = events[i]
			}
			n++
		}
	}
	clear(events[n:])
	return events[:n], len(events) - n
}

// rememberIDs records ids of site as held by the batcher (not yet
// committed); call it only once Add has succeeded. An id already remembered
// keeps its state: its commit may have come first.
func (d *dedup) rememberIDs(site uuid.UUID, ids []uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		if k := (dedupKey{site, id}); !d.hasKey(k) {
			d.remember(k, false)
		}
	}
}

func (d *dedup) hasKey(k dedupKey) bool {
	_, ok := d.seen[k]
	return ok
}

func (d *dedup) remember(k dedupKey, committed bool) {
	if d.size == 0 {
		return
	}
	if len(d.ring) < d.size {
		d.ring = append(d.ring, k)
	} else {
		delete(d.seen, d.ring[d.next])
		d.ring[d.next] = k
		d.next = (d.next + 1) % len(d.ring)
	}
	d.seen[k] = committed
}

// committed marks ids of site as committed, remembering those not
// remembered yet (a commit can come before the Add's caller remembers).
func (d *dedup) committed(site uuid.UUID, ids []uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		k := dedupKey{site, id}
		if _, ok := d.seen[k]; ok {
			d.seen[k] = true
		} else {
			d.remember(k, true)
		}
	}
}

// forget drops ids of site whose events nothing holds any more (their insert
// was given up at shutdown), unless they are committed. Their ring slots stay
// until they come round; an id remembered again meanwhile may then be
// forgotten early, which costs at most one more write of a resend.
func (d *dedup) forget(site uuid.UUID, ids []uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		k := dedupKey{site, id}
		if committed, ok := d.seen[k]; ok && !committed {
			delete(d.seen, k)
		}
	}
}
