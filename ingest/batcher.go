package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BatcherConfig configures a Batcher. Zero fields take the Default* values.
type BatcherConfig struct {
	// Rows flushes the collecting block once it holds this many events.
	// Default DefaultBatchRows.
	Rows int
	// Bytes flushes the collecting block once its events take about this many
	// bytes of memory. Default DefaultBatchBytes.
	Bytes int
	// FlushInterval is the longest an accepted event waits before its insert
	// starts (unless the previous insert is still running). Default DefaultFlushInterval.
	FlushInterval time.Duration
	// RetryMin and RetryMax bound the exponential backoff between failed inserts.
	RetryMin, RetryMax time.Duration
	// InsertTimeout bounds one insert attempt.
	InsertTimeout time.Duration
	// FinalFlushTimeout is the budget of the flush at shutdown.
	FinalFlushTimeout time.Duration
}

func (c *BatcherConfig) withDefaults() {
	if c.Rows <= 0 {
		c.Rows = DefaultBatchRows
	}
	if c.Bytes <= 0 {
		c.Bytes = DefaultBatchBytes
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(DefaultRetryMax, c.RetryMin)
	}
	if c.InsertTimeout <= 0 {
		c.InsertTimeout = DefaultInsertTimeout
	}
	if c.FinalFlushTimeout <= 0 {
		c.FinalFlushTimeout = DefaultFinalFlushTimeout
	}
}

// eventWriter stores a block of events durably, each event once: it
// returns how many it wrote, the others being stored already.
type eventWriter interface {
	WriteChunks(context.Context, [][]Event) (int, error)
}

// ErrClosed is returned by Add once the batcher has stopped accepting events.
var ErrClosed = errors.New("ingest: batcher is shut down")

// Batcher collects events and writes them in blocks: when Rows events (or
// Bytes of them) are collected or FlushInterval after the first one, whichever
// comes first. One insert is in flight at a time while the next block
// collects. A failed insert is retried with the same events until it
// succeeds; meanwhile the next block fills up and then Add waits, which is how
// backpressure reaches clients instead of loss. Memory is bounded by two
// blocks: the one being inserted and the one collecting (each may overshoot its
// bound by the last Add that filled it).
type Batcher struct {
	cfg     BatcherConfig
	w       eventWriter
	log     *slog.Logger
	m       *Metrics
	in      chan pending
	stopped chan struct{} // closed once Run no longer accepts events
}

// pending is one Add call's events and the callback told of their fate.
type pending struct {
	events []Event
	done   func(error)
}

// block is the events of one insert and the callbacks of the Adds they came
// from. It keeps each Add's slice as it came (the batcher owns it) rather than
// copying the events into one: an Event is over 500 bytes, and the copy and
// the growth of a block of tens of thousands took more CPU than the insert's
// encoding (docs/benchmarks.md, "ingest over WebSocket").
type block struct {
	chunks [][]Event
	rows   int
	dones  []func(error)
	bytes  int
}

func (bl *block) add(p pending) {
	bl.chunks = append(bl.chunks, p.events)
	bl.rows += len(p.events)
	for i := range p.events {
		bl.bytes += p.events[i].size()
	}
	if p.done != nil {
		bl.dones = append(bl.dones, p.done)
	}
}

// take moves other's events and callbacks to the end of bl.
func (bl *block) take(other *block) {
	bl.chunks = append(bl.chunks, other.chunks...)
	bl.rows += other.rows
	bl.dones = append(bl.dones, other.dones...)
	bl.bytes += other.bytes
}

func (bl *block) notify(err error) {
	for _, done := range bl.dones {
		done(err)
	}
}

// reset empties a written block for reuse, keeping its memory but none of
// its events.
func (bl *block) reset() {
	clear(bl.chunks)
	clear(bl.dones)
	bl.chunks, bl.dones, bl.rows, bl.bytes = bl.chunks[:0], bl.dones[:0], 0, 0
}

// NewBatcher returns a Batcher writing through w. Call Run to start it.
func NewBatcher(cfg BatcherConfig, w eventWriter, log *slog.Logger, m *Metrics) *Batcher {
	cfg.withDefaults()
	if m == nil {
		m = NewMetrics(prometheus.NewRegistry())
	}
	return &Batcher{cfg: cfg, w: w, log: log, m: m, in: make(chan pending), stopped: make(chan struct{})}
}

// Add hands events to the batcher. It returns once they are buffered, or with
// an error when ctx ends first (the buffer stayed full) or the batcher is shut
// down; then none of the events were taken. The batcher owns the slice once
// Add returned nil: the caller must not change it. done, if not nil, is called
// once the events are committed to ClickHouse (nil) or given up at shutdown
// (error); it runs on the batcher's goroutine and must not block.
func (b *Batcher) Add(ctx context.Context, events []Event, done func(error)) error {
	if len(events) == 0 {
		if done != nil {
			done(nil)
		}
		return nil
	}
	if b.tryAdd(events, done) {
		return nil
	}
	select {
	case b.in <- pending{events: events, done: done}:
		return nil
	case <-b.stopped:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("ingest: buffer full: %w", ctx.Err())
	}
}

// tryAdd is Add when the batcher takes the events at once; false when it
// would have to wait (or is shut down) and took nothing.
func (b *Batcher) tryAdd(events []Event, done func(error)) bool {
	select {
	case <-b.stopped:
		return false
	default:
	}
	select {
	case b.in <- pending{events: events, done: done}:
		return true
	default:
		return false
	}
}

// insertResult is the writer goroutine's answer for one block.
type insertResult struct {
	blk *block
	ok  bool
}

// Run batches until ctx ends, then stops accepting events, flushes what it
// holds within FinalFlushTimeout, and returns.
func (b *Batcher) Run(ctx context.Context) error {
	inserts := make(chan *block)
	results := make(chan insertResult)
	writerDone := make(chan struct{})
	go func() { // owned by Run: it waits on writerDone below
		defer close(writerDone)
		for blk := range inserts {
			results <- insertResult{blk: blk, ok: b.write(ctx, blk)}
		}
	}()

	var (
		cur      = &block{}
		spare    *block // the block of the last insert, emptied for reuse
		inflight bool
		due      bool // the collecting block's interval passed while an insert ran
		unsent   *block
		timer    = time.NewTimer(b.cfg.FlushInterval)
		timerC   <-chan time.Time // nil while the collecting block is empty
	)
	timer.Stop()
	full := func() bool { return cur.rows >= b.cfg.Rows || cur.bytes >= b.cfg.Bytes }
	send := func() {
		inserts <- cur
		cur, inflight, due, timerC = spare, true, false, nil
		if cur == nil {
			cur = &block{}
		}
		spare = nil
		timer.Stop()
	}

loop:
	for {
		in := b.in
		if inflight && full() {
			in = nil // both blocks are full: Add waits
		}
		select {
		case p := <-in:
			if cur.rows == 0 {
				timer.Reset(b.cfg.FlushInterval)
				timerC = timer.C
			}
			cur.add(p)
			b.m.buffered.Add(float64(len(p.events)))
			b.m.bufferedBytes.Set(float64(cur.bytes))
			if full() && !inflight {
				send()
			}
		case <-timerC:
			timerC = nil
			if inflight {
				due = true
			} else {
				send()
			}
		case r := <-results:
			inflight = false
			if !r.ok {
				unsent = r.blk
				break loop
			}
			r.blk.reset()
			spare = r.blk
			if cur.rows > 0 && (due || full()) {
				send()
			}
		case <-ctx.Done():
			break loop
		}
	}

	// Stop accepting, then take whatever a racing Add already handed over.
	close(b.stopped)
	close(inserts)
	if inflight {
		if r := <-results; !r.ok {
			unsent = r.blk
		}
	}
	<-writerDone
	final := &block{}
	if unsent != nil {
		final = unsent
	}
	final.take(cur)
	for drained := false; !drained; {
		select {
		case p := <-b.in:
			final.add(p)
			b.m.buffered.Add(float64(len(p.events)))
		default:
			drained = true
		}
	}
	rows := final.rows
	if rows == 0 {
		return nil
	}
	finalCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.FinalFlushTimeout)
	defer cancel()
	b.log.Info("flushing buffered events before shutdown", "events", rows)
	if !b.write(finalCtx, final) {
		err := fmt.Errorf("ingest: final flush: %d events not written within %s", rows, b.cfg.FinalFlushTimeout)
		b.m.lost.Add(float64(rows))
		b.m.buffered.Sub(float64(rows))
		final.notify(err)
		b.log.Error("events lost at shutdown", "events", rows, "err", err)
		return err
	}
	return nil
}

// write inserts a block, retrying with backoff and the same events until it
// succeeds (true) or ctx ends (false, the block stays with the caller). An
// attempt that has started is not cut short by ctx: it runs to its own
// timeout, so a shutdown never abandons an insert halfway.
func (b *Batcher) write(ctx context.Context, blk *block) bool {
	rows := blk.rows
	backoff := b.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.InsertTimeout)
		start := time.Now()
		written, err := b.w.WriteChunks(attemptCtx, blk.chunks)
		cancel()
		if err == nil {
			b.m.insertSeconds.Observe(time.Since(start).Seconds())
			if written > 0 {
				b.m.batchRows.Observe(float64(written))
			}
			b.m.written.Add(float64(written))
			b.m.duplicates.Add(float64(rows - written))
			b.m.buffered.Sub(float64(rows))
			blk.notify(nil)
			return true
		}
		b.m.insertErrors.Inc()
		b.log.Warn("insert failed, retrying", "events", rows, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, b.cfg.RetryMax)
	}
}
