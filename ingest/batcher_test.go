package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
)

// recordingWriter stores the blocks it is given; the first failures calls fail.
type recordingWriter struct {
	mu       sync.Mutex
	failures int
	attempts []time.Time
	blocks   [][]Event
}

func (w *recordingWriter) WriteChunks(_ context.Context, chunks [][]Event) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts = append(w.attempts, time.Now())
	if w.failures > 0 {
		w.failures--
		return 0, errors.New("clickhouse is down")
	}
	var events []Event
	for _, c := range chunks {
		events = append(events, c...)
	}
	w.blocks = append(w.blocks, events)
	return len(events), nil
}

func (w *recordingWriter) rows() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, b := range w.blocks {
		n += len(b)
	}
	return n
}

func someEvents(n int) []Event {
	events := make([]Event, n)
	for i := range events {
		events[i] = Event{ID: uuid.New(), Type: "track", Name: fmt.Sprintf("e%d", i)}
	}
	return events
}

// startBatcher runs a batcher inside the current synctest bubble and returns a
// function that shuts it down and returns Run's error.
func startBatcher(t *testing.T, cfg BatcherConfig, w eventWriter) (*Batcher, func() error) {
	b := NewBatcher(cfg, w, slog.New(slog.DiscardHandler), nil)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	return b, func() error { cancel(); return <-errc }
}

func TestBatcherFlushesAtRowsOrInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &recordingWriter{}
		b, stop := startBatcher(t, BatcherConfig{Rows: 10, FlushInterval: time.Second}, w)

		// Ten events fill a block: written at once, no waiting for the interval.
		if err := b.Add(t.Context(), someEvents(10), nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := w.rows(); got != 10 {
			t.Fatalf("after a full block, %d rows written, want 10", got)
		}

		// Three events wait for the interval, counted from the first of them.
		start := time.Now()
		if err := b.Add(t.Context(), someEvents(3), nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if got := w.rows(); got != 10 {
			t.Fatalf("before the interval, %d rows written, want 10", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := w.rows(); got != 13 {
			t.Fatalf("at the interval, %d rows written, want 13", got)
		}
		if waited := w.attempts[len(w.attempts)-1].Sub(start); waited != time.Second {
			t.Fatalf("partial block written after %s, want 1s", waited)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBatcherRetriesAndPushesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &recordingWriter{failures: 4}
		b, stop := startBatcher(t, BatcherConfig{Rows: 5, FlushInterval: time.Second, RetryMin: 100 * time.Millisecond, RetryMax: 250 * time.Millisecond}, w)

		var committed error = errors.New("not called")
		if err := b.Add(t.Context(), someEvents(5), func(err error) { committed = err }); err != nil {
			t.Fatal(err)
		}
		// While the insert keeps failing, the next block collects until it is
		// full too; then a new Add cannot get in: it waits, and gives up when
		// its own deadline passes, without losing anything accepted.
		if err := b.Add(t.Context(), someEvents(5), nil); err != nil {
			t.Fatalf("the second block should still take events: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if err := b.Add(ctx, someEvents(1), nil); err == nil {
			t.Fatal("Add succeeded while both blocks were full and ClickHouse down")
		}

		time.Sleep(2 * time.Second)
		synctest.Wait()
		if committed != nil {
			t.Fatalf("done callback = %v, want nil after the retries succeeded", committed)
		}
		if len(w.blocks) != 2 || len(w.blocks[0]) != 5 || len(w.blocks[1]) != 5 {
			t.Fatalf("blocks = %d, want the first 5 events once, then the next 5", len(w.blocks))
		}
		// Backoff doubles from 100 ms and is capped at 250 ms.
		var gaps []time.Duration
		for i := 1; i < len(w.attempts)-1; i++ {
			gaps = append(gaps, w.attempts[i].Sub(w.attempts[i-1]))
		}
		want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}
		if fmt.Sprint(gaps) != fmt.Sprint(want) {
			t.Fatalf("retry gaps = %v, want %v", gaps, want)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBatcherShutdownFlushesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &recordingWriter{failures: 2}
		b, stop := startBatcher(t, BatcherConfig{Rows: 1000, FlushInterval: time.Hour}, w)
		for range 7 {
			if err := b.Add(t.Context(), someEvents(3), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := w.rows(); got != 21 {
			t.Fatalf("after shutdown %d rows written, want all 21", got)
		}
		if err := b.Add(t.Context(), someEvents(1), nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Add after shutdown = %v, want ErrClosed", err)
		}
	})
}

func TestBatcherReportsEventsItCouldNotFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &recordingWriter{failures: 1 << 30}
		b, stop := startBatcher(t, BatcherConfig{Rows: 1000, FlushInterval: time.Hour, FinalFlushTimeout: 3 * time.Second}, w)
		var fate error
		if err := b.Add(t.Context(), someEvents(2), func(err error) { fate = err }); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := stop()
		if err == nil || fate == nil {
			t.Fatalf("Run = %v, done = %v: both must report the unwritten events", err, fate)
		}
		if took := time.Since(start); took < 3*time.Second || took > 4*time.Second {
			t.Fatalf("final flush gave up after %s, want its 3s budget", took)
		}
	})
}

// slowWriter blocks each insert until release is closed.
type slowWriter struct {
	recordingWriter
	release chan struct{}
}

func (w *slowWriter) WriteChunks(ctx context.Context, chunks [][]Event) (int, error) {
	<-w.release
	return w.recordingWriter.WriteChunks(ctx, chunks)
}

func TestBatcherCollectsWhileInserting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &slowWriter{release: make(chan struct{})}
		b, stop := startBatcher(t, BatcherConfig{Rows: 4, FlushInterval: time.Second}, w)
		var order []int
		for i := range 2 {
			if err := b.Add(t.Context(), someEvents(4), func(error) { order = append(order, i) }); err != nil {
				t.Fatalf("block %d: %v", i, err)
			}
		}
		// One insert runs (blocked), the next block is full: a third Add waits.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := b.Add(ctx, someEvents(1), nil); err == nil {
			t.Fatal("Add succeeded with one block in flight and the next one full")
		}
		close(w.release)
		synctest.Wait()
		if len(w.blocks) != 2 || fmt.Sprint(order) != "[0 1]" {
			t.Fatalf("blocks = %d, commit order %v: want both blocks, in order", len(w.blocks), order)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBatcherBoundsBlockBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &recordingWriter{}
		events := someEvents(10)
		per := events[0].size()
		b, stop := startBatcher(t, BatcherConfig{Rows: 1000, Bytes: 3 * per, FlushInterval: time.Hour}, w)
		for i := range events {
			if err := b.Add(t.Context(), events[i:i+1], nil); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if len(w.blocks) != 3 || len(w.blocks[0]) != 3 {
			t.Fatalf("blocks %d, first of %d rows: want blocks of 3 events by the byte bound", len(w.blocks), len(w.blocks[0]))
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if w.rows() != 10 {
			t.Fatalf("%d rows written, want 10", w.rows())
		}
	})
}
