package ingest

import (
	"sync"

	"github.com/google/uuid"
)

// dedupKey is one event of one site.
type dedupKey struct{ site, id uuid.UUID }

// dedup remembers the ids of the last N accepted events over all sites, and
// whether each is committed. It is a FIFO: the oldest id is forgotten first.
// Memory: about 100 bytes per entry (map entry plus ring slot), allocated as
// entries come, not up front: an idle node holds none.
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

// filter returns the events to write and, among them, the fresh ones (never
// seen: handed to the live stream), and the number of committed duplicates
// left out. Fresh events are remembered as seen. Seen but uncommitted events
// are written again, so that an ack never depends on another connection's
// insert; storage merges them. events may be reordered in place.
func (d *dedup) filter(site uuid.UUID, events []Event) (write, fresh []Event, dups int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	var again []Event // seen, not committed: moved behind the fresh ones
	for i := range events {
		k := dedupKey{site, events[i].ID}
		committed, ok := d.seen[k]
		switch {
		case !ok:
			d.remember(k)
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
// committed nor in flight), without remembering them, and how many were left
// out. The HTTP path uses it: an event it leaves out is either stored or held
// by the batcher for another connection, which will store it.
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

// rememberIDs records ids of site as seen (in flight).
func (d *dedup) rememberIDs(site uuid.UUID, ids []uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		if k := (dedupKey{site, id}); !d.hasKey(k) {
			d.remember(k)
		}
	}
}

func (d *dedup) hasKey(k dedupKey) bool {
	_, ok := d.seen[k]
	return ok
}

func (d *dedup) remember(k dedupKey) {
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
	d.seen[k] = false
}

// committed marks ids of site as committed, where they are still remembered.
func (d *dedup) committed(site uuid.UUID, ids []uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		k := dedupKey{site, id}
		if _, ok := d.seen[k]; ok {
			d.seen[k] = true
		}
	}
}
