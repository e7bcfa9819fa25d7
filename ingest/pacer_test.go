package ingest

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	fws "github.com/fasthttp/websocket"
	dto "github.com/prometheus/client_model/go"
)

// The pacer lets a burst through at once and the rest at the rate, with the
// reader waiting in between (virtual time: testing/synctest), and closes only
// a client that stays over the rate.
func TestPacerPacesBurstsAndLimitsFloods(t *testing.T) {
	// frames replays n frames that arrive every gap (0: all at once, as a
	// stalled tracker's resend burst does), the reader waiting as told. It
	// returns how many were handled before the pacer refused one, how many
	// waited, and how long it all took.
	frames := func(p *pacer, n int, gap time.Duration) (handled, paced int, took time.Duration) {
		start := time.Now()
		for i := range n {
			if i > 0 && gap > 0 {
				time.Sleep(gap)
			}
			d, ok := p.take(time.Now())
			if !ok {
				break
			}
			if d > 0 {
				paced++
				wait(context.Background(), d)
			}
			handled++
		}
		return handled, paced, time.Since(start)
	}
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(DefaultFramesPerSecond, DefaultFrameBurst, DefaultPacedFrames)
		handled, paced, took := frames(&p, 300, 0)
		if handled != 300 || paced != 200 || took < 4*time.Second-time.Millisecond || took > 4*time.Second+time.Millisecond {
			t.Fatalf("300 frames at once: %d handled, %d paced, in %s; want all, 200 paced, in 4s (100 at once, then 50 a second)", handled, paced, took)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(DefaultFramesPerSecond, DefaultFrameBurst, DefaultPacedFrames)
		if handled, paced, _ := frames(&p, 10_000, time.Second/45); handled != 10_000 || paced != 0 {
			t.Fatalf("45 frames a second: %d handled, %d paced; want all, none paced", handled, paced)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(DefaultFramesPerSecond, DefaultFrameBurst, DefaultPacedFrames)
		handled, paced, took := frames(&p, 1_000_000, 0)
		if handled != DefaultFrameBurst+DefaultPacedFrames || paced != DefaultPacedFrames || took != time.Minute {
			t.Fatalf("a flood: %d handled, %d paced, closed after %s; want %d, %d, after a minute",
				handled, paced, took, DefaultFrameBurst+DefaultPacedFrames, DefaultPacedFrames)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// Bursts with pauses that let the bucket fill again are never closed.
		p := newPacer(DefaultFramesPerSecond, DefaultFrameBurst, DefaultPacedFrames)
		for range 10 {
			if handled, _, _ := frames(&p, 2*DefaultPacedFrames/3, 0); handled != 2*DefaultPacedFrames/3 {
				t.Fatalf("a burst after a pause: %d handled, want all %d", handled, 2*DefaultPacedFrames/3)
			}
			time.Sleep(time.Duration(DefaultFrameBurst) * time.Second / DefaultFramesPerSecond)
		}
	})
}

// TestResendBurstIsPacedNotClosed: a tracker back from a network stall sends
// its 300 unacknowledged frames at once, three times the burst the server
// allows. With the default limits it is paced, not closed: every frame is
// acknowledged and every event stored once.
func TestResendBurstIsPacedNotClosed(t *testing.T) {
	const frames = 300
	env := newWSEnv(t, Config{}, BatcherConfig{Rows: 1000, FlushInterval: 10 * time.Millisecond})
	cl, _ := env.connect(t, "")
	start := time.Now()
	for seq := int64(1); seq <= frames; seq++ {
		raws, _ := testEvents(1)
		cl.send(eventsFrame(seq, raws))
	}
	if other := cl.waitAck(frames, 60*time.Second); len(other) != 0 {
		t.Fatalf("unexpected frames: %+v", other[:min(3, len(other))])
	}
	t.Logf("%d frames acknowledged after %s, %v of them paced", frames, time.Since(start), counterValue(env.m.paced))
	if rows, distinct := env.storedCounts(t); rows != frames || distinct != frames {
		t.Fatalf("stored %d rows (%d distinct), want the %d events once", rows, distinct, frames)
	}
}

// TestFloodIsPacedThenClosed: a client that sends pings without end is read
// at its frame rate, and closed with 4029 once it has been paced for
// PacedFrames frames in a row.
func TestFloodIsPacedThenClosed(t *testing.T) {
	cfg := Config{FramesPerSecond: 100, FrameBurst: 10, PacedFrames: 200}
	env := newWSEnv(t, cfg, BatcherConfig{Rows: 1000, FlushInterval: 10 * time.Millisecond})
	cl, _ := env.connect(t, "")
	start := time.Now()
	flooding := make(chan struct{})
	go func() { // owned: the test waits on flooding below
		defer close(flooding)
		for {
			cl.wmu.Lock()
			err := cl.c.WriteMessage(fws.TextMessage, []byte(`{"type":"ping"}`))
			cl.wmu.Unlock()
			if err != nil {
				return // the server closed the connection
			}
		}
	}()
	pongs := 0
	var f serverFrame
	for f = cl.next(30 * time.Second); f.Type == "pong"; f = cl.next(30 * time.Second) {
		pongs++
	}
	took := time.Since(start)
	_ = cl.c.NetConn().Close()
	<-flooding
	if f.Type != "close" || f.CloseCode != CloseRateLimited || f.CloseText != "more than 100 frames per second for 200 frames in a row" {
		t.Fatalf("after %d pongs: %+v, want close %d", pongs, f, CloseRateLimited)
	}
	// Paced before it was closed, and never faster than the rate.
	if most := cfg.FrameBurst + int(took.Seconds()*float64(cfg.FramesPerSecond)) + 1; pongs < cfg.PacedFrames || pongs > most {
		t.Fatalf("%d frames answered in %s before the close; want at least the %d paced ones and at most %d (burst and rate)",
			pongs, took, cfg.PacedFrames, most)
	}
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
