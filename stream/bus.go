package stream

import (
	"sync"

	"github.com/google/uuid"
)

// Bus carries site events and presence between the nodes of a cluster: each
// node publishes what its ingest accepted, and a hub subscribes to the sites
// whose live state it keeps. The hub subscribes with uuid.Nil, meaning every
// site. Publish must not keep m after it returns (a networked bus encodes
// it); fn must not block and must not keep m.
type Bus interface {
	Publish(site uuid.UUID, m Message)
	Subscribe(site uuid.UUID, fn func(site uuid.UUID, m Message)) (unsubscribe func())
}

// InProcBus is the one-node Bus: Publish calls the subscribers at once, on
// the publisher's goroutine.
type InProcBus struct {
	mu   sync.RWMutex
	subs map[uuid.UUID]map[*busSub]struct{}
}

type busSub struct {
	fn func(uuid.UUID, Message)
}

// NewInProcBus returns an empty in-process bus.
func NewInProcBus() *InProcBus {
	return &InProcBus{subs: make(map[uuid.UUID]map[*busSub]struct{})}
}

// Publish hands m to the subscribers of site and of every site.
func (b *InProcBus) Publish(site uuid.UUID, m Message) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs[site] {
		s.fn(site, m)
	}
	if site != uuid.Nil {
		for s := range b.subs[uuid.Nil] {
			s.fn(site, m)
		}
	}
}

// Subscribe calls fn with every message of site (every site for uuid.Nil)
// until unsubscribe is called.
func (b *InProcBus) Subscribe(site uuid.UUID, fn func(uuid.UUID, Message)) func() {
	s := &busSub{fn: fn}
	b.mu.Lock()
	if b.subs[site] == nil {
		b.subs[site] = make(map[*busSub]struct{})
	}
	b.subs[site][s] = struct{}{}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.subs[site], s)
		if len(b.subs[site]) == 0 {
			delete(b.subs, site)
		}
		b.mu.Unlock()
	}
}
