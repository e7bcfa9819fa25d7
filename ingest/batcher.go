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
	// Rows flushes the buffer once it holds this many events. It also bounds
	// memory: while a full buffer is being written, Add waits.
	Rows int
	// FlushInterval is the longest an accepted event waits before its insert starts.
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

// eventWriter stores a block of events durably.
type eventWriter interface {
	WriteEvents(context.Context, []Event) error
}

// ErrClosed is returned by Add once the batcher has stopped accepting events.
var ErrClosed = errors.New("ingest: batcher is shut down")

// Batcher collects events and writes them in blocks: when Rows events are
// buffered or FlushInterval after the first one, whichever comes first. A failed
// insert is retried with the same events until it succeeds; meanwhile Add waits,
// which is how backpressure reaches clients instead of loss.
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
// down; then none of the events were taken. done, if not nil, is called once
// the events are committed to ClickHouse (nil) or given up at shutdown (error).
func (b *Batcher) Add(ctx context.Context, events []Event, done func(error)) error {
	if len(events) == 0 {
		if done != nil {
			done(nil)
		}
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

// Run batches until ctx ends, then stops accepting events, flushes what it
// holds within FinalFlushTimeout, and returns.
func (b *Batcher) Run(ctx context.Context) error {
	var (
		buf    []pending
		rows   int
		timer  = time.NewTimer(b.cfg.FlushInterval)
		timerC <-chan time.Time // nil while the buffer is empty
	)
	timer.Stop()
	flush := func() bool {
		ok := b.write(ctx, buf, rows)
		if ok {
			buf, rows, timerC = nil, 0, nil
			timer.Stop()
		}
		return ok
	}

loop:
	for {
		select {
		case p := <-b.in:
			if rows == 0 {
				timer.Reset(b.cfg.FlushInterval)
				timerC = timer.C
			}
			buf = append(buf, p)
			rows += len(p.events)
			b.m.buffered.Add(float64(len(p.events)))
			if rows >= b.cfg.Rows && !flush() {
				break loop
			}
		case <-timerC:
			if !flush() {
				break loop
			}
		case <-ctx.Done():
			break loop
		}
	}

	// Stop accepting, then take whatever a racing Add already handed over.
	close(b.stopped)
	for drained := false; !drained; {
		select {
		case p := <-b.in:
			buf = append(buf, p)
			rows += len(p.events)
			b.m.buffered.Add(float64(len(p.events)))
		default:
			drained = true
		}
	}
	if rows == 0 {
		return nil
	}
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.FinalFlushTimeout)
	defer cancel()
	b.log.Info("flushing buffered events before shutdown", "events", rows)
	if !b.write(final, buf, rows) {
		err := fmt.Errorf("ingest: final flush: %d events not written within %s", rows, b.cfg.FinalFlushTimeout)
		b.m.lost.Add(float64(rows))
		b.m.buffered.Sub(float64(rows))
		notify(buf, err)
		b.log.Error("events lost at shutdown", "events", rows, "err", err)
		return err
	}
	return nil
}

// write inserts the buffered events as one block, retrying with backoff until
// it succeeds (true) or ctx ends (false, the events stay with the caller). An
// attempt that has started is not cut short by ctx: it runs to its own timeout,
// so a shutdown never abandons an insert halfway.
func (b *Batcher) write(ctx context.Context, buf []pending, rows int) bool {
	events := make([]Event, 0, rows)
	for _, p := range buf {
		events = append(events, p.events...)
	}
	backoff := b.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.InsertTimeout)
		start := time.Now()
		err := b.w.WriteEvents(attemptCtx, events)
		cancel()
		if err == nil {
			b.m.insertSeconds.Observe(time.Since(start).Seconds())
			b.m.batchRows.Observe(float64(rows))
			b.m.written.Add(float64(rows))
			b.m.buffered.Sub(float64(rows))
			notify(buf, nil)
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

func notify(buf []pending, err error) {
	for _, p := range buf {
		if p.done != nil {
			p.done(err)
		}
	}
}
