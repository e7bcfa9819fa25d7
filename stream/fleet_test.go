package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The live benchmarks' clients run in a process of their own (this test
// binary, started again by startFleet), so that the server's CPU and memory
// are its own and each process has its own open-files limit: 10,000
// subscribers need 10,000 descriptors on each side.

// envFleet carries a fleetSpec to the client process.
const envFleet = "PULSE_BENCH_FLEET"

// fleetSpec says what the client process opens.
type fleetSpec struct {
	Addr  string   // host:port
	Path  string   // "/v1/live" (auth and subscribe) or a plain WebSocket path
	Token string   // read API key (live)
	Site  string   // site id (live)
	Views []string // views (live)
	N     int      // connections
	// RecordEvery: every RecordEvery-th connection records, for every
	// delta, the time from the delta's state time to its arrival.
	RecordEvery int
}

// fleetReport is what the client process answers to "report".
type fleetReport struct {
	Frames   int64   `json:"frames"`    // messages received since the last reset
	DelaysUS []int64 `json:"delays_us"` // recorded delays, µs
	Closed   int64   `json:"closed"`    // connections the server closed
}

// child is a running helper process of the live benchmarks: this test
// binary, started again to run one Test function (TestBenchFleet,
// TestBenchServer) that talks over stdin and stdout, one line each way.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startChild starts the test binary running test with env set, and returns
// it with its first line.
func startChild(b *testing.B, test string, env ...string) (*child, string) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	c.out.Buffer(make([]byte, 1<<20), 64<<20)
	b.Cleanup(c.close)
	return c, c.line(b)
}

// line returns the next line the child prints that is its own (the test
// framework prints "PASS" and such too).
func (c *child) line(b *testing.B) string {
	b.Helper()
	for c.out.Scan() {
		if l := c.out.Text(); len(l) > 6 && l[:6] == "child:" {
			return l[6:]
		}
	}
	b.Fatalf("helper process ended: %v", c.out.Err())
	return ""
}

// ask sends a command and returns the answer.
func (c *child) ask(b *testing.B, cmd string) string {
	b.Helper()
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		b.Fatal(err)
	}
	return c.line(b)
}

// close ends the child (closing its stdin) and waits for it.
func (c *child) close() {
	if c.in != nil {
		_ = c.in.Close()
		c.in = nil
		_ = c.cmd.Wait()
	}
}

// answer prints a child's line.
func answer(s string) { fmt.Println("child:" + s) }

// fleet is a running client process.
type fleet struct{ *child }

// startFleet starts the client process and waits until its connections are
// open (and subscribed).
func startFleet(b *testing.B, spec fleetSpec) *fleet {
	b.Helper()
	raw, _ := json.Marshal(spec)
	c, first := startChild(b, "TestBenchFleet", envFleet+"="+string(raw))
	if first != "ready" {
		b.Fatalf("client process: %s", first)
	}
	return &fleet{c}
}

// reset zeroes the counters; report returns them.
func (f *fleet) reset(b *testing.B) {
	if l := f.ask(b, "reset"); l != "ok" {
		b.Fatal(l)
	}
}

func (f *fleet) report(b *testing.B) fleetReport {
	var r fleetReport
	if err := json.Unmarshal([]byte(f.ask(b, "report")), &r); err != nil {
		b.Fatal(err)
	}
	return r
}

// TestBenchFleet is not a test: it is the client process of the live
// benchmarks (see startFleet), skipped unless PULSE_BENCH_FLEET is set.
func TestBenchFleet(t *testing.T) {
	raw := os.Getenv(envFleet)
	if raw == "" {
		t.Skip("the client process of BenchmarkLive")
	}
	var spec fleetSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	st := &fleetStats{}
	stop, err := openFleet(spec, st)
	if err != nil {
		answer(err.Error())
		return
	}
	answer("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "reset":
			st.frames.Store(0)
			st.mu.Lock()
			st.delays = nil
			st.mu.Unlock()
			answer("ok")
		case "report":
			st.mu.Lock()
			r, _ := json.Marshal(fleetReport{Frames: st.frames.Load(), DelaysUS: st.delays, Closed: st.closed.Load()})
			st.mu.Unlock()
			answer(string(r))
		}
	}
	stop()
}

// fleetStats are the client process's counters.
type fleetStats struct {
	frames, closed atomic.Int64
	mu             sync.Mutex
	delays         []int64
}

func (st *fleetStats) record(us int64) {
	st.mu.Lock()
	st.delays = append(st.delays, us)
	st.mu.Unlock()
}

// text counts a text message received at now, recording its delay after the
// state time it carries when rec is set.
func (st *fleetStats) text(p []byte, now time.Time, rec bool) {
	st.frames.Add(1)
	if !rec {
		return
	}
	if i := bytes.Index(p, leanTimeKey); i >= 0 {
		rest := p[i+len(leanTimeKey):]
		if j := bytes.IndexAny(rest, ",}"); j > 0 {
			if ms, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
				st.record(now.Sub(time.UnixMilli(ms)).Microseconds())
			}
		}
	}
}

// dialAll runs dial(i) for i in [0, n), 8 at a time, and returns the first error.
func dialAll(n int, dial func(i int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var dialers sync.WaitGroup
	for range 8 {
		dialers.Go(func() {
			for first.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := dial(i); err != nil {
					first.CompareAndSwap(nil, fmt.Errorf("connection %d: %w", i, err))
				}
			}
		})
	}
	dialers.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return nil
}

// upgradeRequest is the client's WebSocket handshake.
func upgradeRequest(spec fleetSpec) string {
	return "GET " + spec.Path + " HTTP/1.1\r\nHost: " + spec.Addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// subscribeFrames are the live client's auth and subscribe frames.
func subscribeFrames(spec fleetSpec) []byte {
	auth, _ := json.Marshal(map[string]any{"type": "auth", "token": spec.Token})
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "site": spec.Site, "views": spec.Views})
	return append(maskedText(auth), maskedText(sub)...)
}

// parseFrame parses the server frame at the start of b; ok is false when b
// holds only part of it. n is the frame's length.
func parseFrame(b []byte) (op byte, payload []byte, n int, ok bool) {
	if len(b) < 2 {
		return 0, nil, 0, false
	}
	size, head := uint64(b[1]&0x7f), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return 0, nil, 0, false
		}
		size, head = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, nil, 0, false
		}
		size, head = binary.BigEndian.Uint64(b[2:]), 10
	}
	if uint64(len(b)-head) < size {
		return 0, nil, 0, false
	}
	n = head + int(size)
	return b[0] & 0x0f, b[head:n], n, true
}

// maskedText is a client text frame (clients must mask; the key is zero).
func maskedText(p []byte) []byte {
	var b []byte
	if len(p) < 126 {
		b = []byte{0x81, 0x80 | byte(len(p))}
	} else {
		b = []byte{0x81, 0x80 | 126, byte(len(p) >> 8), byte(len(p))}
	}
	return append(append(b, 0, 0, 0, 0), p...)
}

var leanTimeKey = []byte(`"changes":{"time":`)

// leanPong answers a server's ping (masked, empty).
var leanPong = []byte{0x80 | wsPong, 0x80, 0, 0, 0, 0}
