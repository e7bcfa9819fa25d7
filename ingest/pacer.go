package ingest

import (
	"context"
	"time"
)

// pacer holds one connection to its frame rate, FramesPerSecond with bursts
// of FrameBurst (a token bucket), by pacing rather than refusing: a frame
// that finds no token waits until one has come before it is handled, and the
// reader reads nothing meanwhile, so TCP slows the client down. A resend
// burst (a tracker back from a network stall with hundreds of frames) thus
// goes through at the rate. A client that stays over the rate is closed:
// once more than limit frames in a row have had to wait, counted from the
// last time the bucket was full (the client had kept under the rate for
// FrameBurst/FramesPerSecond), see DefaultPacedFrames. Used by the reader only.
type pacer struct {
	rate, burst float64
	limit       int // frames that may wait in a row
	tokens      float64
	last        time.Time
	paced       int // frames that waited since the bucket was last full
}

func newPacer(framesPerSecond, burst, limit int) pacer {
	return pacer{rate: float64(framesPerSecond), burst: float64(burst), limit: limit}
}

// take spends a token for a frame read at now. It returns how long the
// frame must wait for its token (0: there was one), and false when the
// connection has waited for more than limit frames in a row.
func (p *pacer) take(now time.Time) (time.Duration, bool) {
	if p.last.IsZero() {
		p.tokens = p.burst
	} else {
		p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
	}
	p.last = now
	if p.tokens >= p.burst {
		p.paced = 0
	}
	p.tokens--
	if p.tokens >= 0 {
		return 0, true
	}
	if p.paced++; p.paced > p.limit {
		return 0, false
	}
	return time.Duration(-p.tokens / p.rate * float64(time.Second)), true
}

// wait sleeps for d, or until ctx ends (false).
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
