package stream

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeNet is a sink standing for a client's socket: reading says whether the
// client reads; a write to a client that does not read blocks until its
// deadline, as a full TCP window does.
type fakeNet struct {
	mu        sync.Mutex
	reading   bool
	frames    []received
	closedAt  time.Time
	code      int
	stalledAt time.Time
}

type received struct {
	at   time.Time
	seq  uint64
	snap bool
	time int64 // the state time the frame carries (Unix ms)
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func (n *fakeNet) encode(f *frame) []byte { return f.data }
func (n *fakeNet) ping() []byte           { return nil }
func (n *fakeNet) pong() []byte           { return nil }
func (n *fakeNet) interrupt()             {}
func (n *fakeNet) abort()                 {}
func (n *fakeNet) closing(code int, _ string) []byte {
	n.mu.Lock()
	n.closedAt, n.code = time.Now(), code
	n.mu.Unlock()
	return nil
}

// tryWrite takes the whole frame when the client reads, nothing otherwise.
func (n *fakeNet) tryWrite(b []byte) (int, error) {
	n.mu.Lock()
	reading := n.reading
	n.mu.Unlock()
	if !reading {
		return 0, nil
	}
	n.record(b)
	return len(b), nil
}

func (n *fakeNet) write(b []byte, deadline time.Time) error {
	for { // a write to a client that does not read waits for it or times out
		n.mu.Lock()
		reading := n.reading
		n.mu.Unlock()
		if reading {
			break
		}
		if !time.Now().Before(deadline) {
			n.mu.Lock()
			n.stalledAt = time.Now()
			n.mu.Unlock()
			return timeoutErr{}
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.record(b)
	return nil
}

func (n *fakeNet) record(b []byte) {
	var head struct {
		Type    string    `json:"type"`
		Seq     uint64    `json:"seq"`
		State   *Snapshot `json:"state"`
		Changes *Delta    `json:"changes"`
	}
	_ = json.Unmarshal(b, &head)
	r := received{at: time.Now(), seq: head.Seq, snap: head.Type == "snapshot"}
	if head.State != nil {
		r.time = head.State.Time
	} else if head.Changes != nil {
		r.time = head.Changes.Time
	}
	n.mu.Lock()
	n.frames = append(n.frames, r)
	n.mu.Unlock()
}

func newTestHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return New(cfg, nil, prometheus.NewRegistry())
}

// attach subscribes a subscriber with a fake network and writes its
// snapshot, as a connection's goroutine does, until it ends.
func attach(h *Hub, site uuid.UUID, n *fakeNet, wg *sync.WaitGroup) *subscriber {
	sub := newSubscriber(h, site, AllViews, n)
	h.track(sub)
	h.subscribe(sub)
	wg.Go(func() {
		defer h.untrack(sub)
		defer h.unsubscribe(sub)
		sub.drain()
		sub.wait()
	})
	return sub
}

func counter(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestStalledSubscriber: a subscriber that does not read for 60 s (fake
// time) keeps at most its queue bound queued, does not delay another
// subscriber's deltas, and is closed with CloseStalled once a write has
// blocked for StallTimeout.
func TestStalledSubscriber(t *testing.T) {
	tests := []struct {
		name      string
		stall     time.Duration
		wantClose bool
	}{
		{name: "default stall timeout closes it", stall: 0, wantClose: true},
		{name: "stall timeout above 60 s keeps it bounded", stall: 90 * time.Second, wantClose: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newTestHub(t, Config{StallTimeout: tt.stall})
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				wg.Go(func() { _ = h.Run(ctx) })
				site := uuid.New()
				slow, fast := &fakeNet{}, &fakeNet{reading: true}
				slowSub := attach(h, site, slow, &wg)
				attach(h, site, fast, &wg)

				start := time.Now()
				i := 0
				for time.Since(start) < 60*time.Second {
					batch := make([]Event, 20)
					for j := range batch {
						batch[j] = page("/p/"+string(rune('a'+i%26)), uint64(i), uint64(i))
						i++
					}
					h.Publish(site, batch)
					time.Sleep(50 * time.Millisecond)
				}
				synctest.Wait()
				_, peak := slowSub.queuedBytes()
				if peak > h.cfg.QueueBytes || peak == 0 {
					t.Errorf("slow subscriber's queue peaked at %d bytes, bound %d", peak, h.cfg.QueueBytes)
				}
				fast.mu.Lock()
				frames := fast.frames
				fast.mu.Unlock()
				if len(frames) < int(60*time.Second/DefaultTick)*9/10 {
					t.Errorf("fast subscriber got %d frames in 60 s, want about one per tick (%d)", len(frames), 60*time.Second/DefaultTick)
				}
				var worst time.Duration
				for _, f := range frames {
					if d := f.at.Sub(time.UnixMilli(f.time)); d > worst {
						worst = d
					}
				}
				if worst > DefaultTick {
					t.Errorf("fast subscriber's worst delay after its state's time: %v, want at most one tick", worst)
				}
				slow.mu.Lock()
				stalledAt := slow.stalledAt
				slow.mu.Unlock()
				code, _ := slowSub.closeReason()
				if tt.wantClose {
					if code != CloseStalled || stalledAt.Sub(start) > DefaultStallTimeout+time.Second {
						t.Errorf("slow subscriber ended with %d after %v, want %d within %v", code, stalledAt.Sub(start), CloseStalled, DefaultStallTimeout+time.Second)
					}
				} else {
					if code != 0 {
						t.Errorf("slow subscriber closed with %d before its stall timeout", code)
					}
					if c := counter(t, h.m.coalesced); c < 1 {
						t.Errorf("coalesced = %v, want the slow queue coalesced", c)
					}
					// It reads again: one catch-up frame brings it to the current state.
					slow.mu.Lock()
					slow.reading = true
					slow.mu.Unlock()
					time.Sleep(tt.stall)
					synctest.Wait()
					slow.mu.Lock()
					got := slow.frames
					slow.mu.Unlock()
					if len(got) == 0 || got[len(got)-1].seq != slowSub.site.seq {
						t.Errorf("after reading again the slow subscriber is at %v, site at %d", got, slowSub.site.seq)
					}
				}
				if err := h.Shutdown(context.Background()); err != nil {
					t.Error(err)
				}
				cancel()
				wg.Wait()
			})
		})
	}
}

// TestCatchUp: a subscriber whose queue overflowed gets one coalesced delta
// when the state it has is still in the history, and a snapshot with a
// missed count when it is further behind.
func TestCatchUp(t *testing.T) {
	h := newTestHub(t, Config{History: 4, QueueFrames: 2})
	site := uuid.New()
	sub := newSubscriber(h, site, AllViews, &fakeNet{})
	h.subscribe(sub)
	// The snapshot is queued; take it out as a writer would, keeping the
	// output so that what follows queues up.
	sub.mu.Lock()
	if len(sub.queue) != 1 || !sub.queue[0].snapshot {
		t.Fatalf("first frame %+v, want a snapshot", sub.queue)
	}
	from := sub.queue[0].seq
	sub.queue, sub.queued, sub.sent = nil, 0, from
	sub.mu.Unlock()
	s := sub.site
	publish := func(n int) {
		for i := range n {
			h.Publish(site, []Event{page("/x", uint64(i), 1)})
			s.mu.Lock()
			s.dirty = true
			s.mu.Unlock()
			h.publish(s, time.Now(), nil)
		}
	}
	publish(3)
	sub.mu.Lock()
	resync := sub.resync
	sub.mu.Unlock()
	if !resync {
		t.Fatal("3 frames into a queue of 2: want a resync")
	}
	f := h.catchUp(sub, from)
	if f.snapshot || f.prev != from || f.seq != s.seq || f.missed != 2 {
		t.Errorf("catch-up %+v, want a delta from %d to %d with missed 2", f, from, s.seq)
	}
	publish(6)
	f = h.catchUp(sub, from)
	if !f.snapshot || f.missed != s.seq-from-1 {
		t.Errorf("catch-up %+v, want a snapshot with missed %d", f, s.seq-from-1)
	}
	if c := counter(t, h.m.resyncs); c != 1 {
		t.Errorf("resyncs = %v, want 1", c)
	}
}

// TestIdleSitesAreFreed: a site nobody watches is freed an IdleSiteTTL after
// its last event; a watched one is kept, and events after a free start afresh.
func TestIdleSitesAreFreed(t *testing.T) {
	h := newTestHub(t, Config{})
	idle, watched := uuid.New(), uuid.New()
	h.Publish(idle, []Event{page("/", 1, 1)})
	h.Publish(watched, []Event{page("/", 1, 1)})
	sub := newSubscriber(h, watched, AllViews, &fakeNet{})
	h.subscribe(sub)
	h.sweep(time.Now().Add(DefaultIdleSiteTTL / 2))
	if h.site(idle, false) == nil {
		t.Fatal("site freed before its idle TTL")
	}
	h.sweep(time.Now().Add(DefaultIdleSiteTTL + time.Minute))
	if h.site(idle, false) != nil {
		t.Error("idle site kept after its TTL")
	}
	if h.site(watched, false) == nil {
		t.Error("watched site freed")
	}
	h.Publish(idle, []Event{page("/again", 2, 2)})
	s := h.site(idle, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.st.snapshot().Pages.Long; len(p) != 1 || p[0].Key != "/again" {
		t.Errorf("pages after the site was freed: %v", p)
	}
}

// TestOverflowBeforeFirstSnapshot: a subscriber whose queue overflows before
// its first snapshot is written still starts with a snapshot.
func TestOverflowBeforeFirstSnapshot(t *testing.T) {
	h := newTestHub(t, Config{QueueFrames: 2})
	site := uuid.New()
	n := &fakeNet{reading: true}
	sub := newSubscriber(h, site, AllViews, n)
	h.subscribe(sub)
	s := sub.site
	for i := range 5 {
		h.Publish(site, []Event{page("/x", uint64(i), 1)})
		h.publish(s, time.Now(), nil)
	}
	var wg sync.WaitGroup
	wg.Go(func() { sub.drain() })
	wg.Wait()
	n.mu.Lock()
	got := slices.Clone(n.frames)
	n.mu.Unlock()
	if len(got) == 0 || !got[0].snap || got[0].seq != s.seq {
		t.Errorf("frames %+v, want first a snapshot at seq %d", got, s.seq)
	}
	sub.end(CloseGoingAway, "test over")
	sub.wait()
}

// TestFanoutWriters: a fan-out split over several writers still hands every
// subscriber every delta, in order, each one chaining from the frame before.
func TestFanoutWriters(t *testing.T) {
	h := newTestHub(t, Config{})
	h.fanoutWriters = 3
	site := uuid.New()
	const n = 3*minFanoutShare + 7
	nets := make([]*fakeNet, n)
	subs := make([]*subscriber, n)
	for i := range nets {
		nets[i] = &fakeNet{reading: true}
		subs[i] = newSubscriber(h, site, ViewPages, nets[i])
		h.subscribe(subs[i])
		subs[i].drain() // the snapshot
	}
	s := subs[0].site
	const ticks = 5
	for i := range ticks {
		h.Publish(site, []Event{page("/p/"+strconv.Itoa(i), uint64(i), uint64(i))})
		h.publish(s, time.Now(), nil)
	}
	for i, net := range nets {
		net.mu.Lock()
		got := slices.Clone(net.frames)
		net.mu.Unlock()
		if len(got) != ticks+1 || !got[0].snap {
			t.Fatalf("subscriber %d got %d frames (first %+v), want a snapshot and %d deltas", i, len(got), got[0], ticks)
		}
		for k := 1; k < len(got); k++ {
			if got[k].snap || got[k].seq != got[k-1].seq+1 {
				t.Fatalf("subscriber %d: frame %d is seq %d after %d", i, k, got[k].seq, got[k-1].seq)
			}
		}
	}
	if c := counter(t, h.m.deltas); c != n*ticks {
		t.Errorf("deltas sent = %v, want %d", c, n*ticks)
	}
}
