package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	var (
		frames, closed atomic.Int64
		mu             sync.Mutex
		delays         []int64
		conns          = make([]net.Conn, spec.N)
		wg             sync.WaitGroup
	)
	record := func(us int64) {
		mu.Lock()
		delays = append(delays, us)
		mu.Unlock()
	}
	// Open the connections, 8 at a time.
	next := atomic.Int64{}
	var dialErr atomic.Value
	var dialers sync.WaitGroup
	for range 8 {
		dialers.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= spec.N || dialErr.Load() != nil {
					return
				}
				c, br, err := dialLean(spec)
				if err != nil {
					dialErr.Store(fmt.Errorf("connection %d: %w", i, err))
					return
				}
				conns[i] = c
				rec := spec.RecordEvery > 0 && i%spec.RecordEvery == 0
				wg.Go(func() { // owned: waited on below, ended by closing c
					if leanRead(c, br, &frames, rec, record) {
						closed.Add(1)
					}
				})
			}
		})
	}
	dialers.Wait()
	if err := dialErr.Load(); err != nil {
		answer(err.(error).Error())
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
		wg.Wait()
		return
	}
	answer("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "reset":
			frames.Store(0)
			mu.Lock()
			delays = nil
			mu.Unlock()
			answer("ok")
		case "report":
			mu.Lock()
			r, _ := json.Marshal(fleetReport{Frames: frames.Load(), DelaysUS: delays, Closed: closed.Load()})
			mu.Unlock()
			answer(string(r))
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
	wg.Wait()
}

// dialLean opens one WebSocket with as little client work as possible: a
// hand-written upgrade, then (for the live path) auth and subscribe, and
// waits for the first message (the snapshot) on the live path.
func dialLean(spec fleetSpec) (net.Conn, *bufio.Reader, error) {
	c, err := net.Dial("tcp", spec.Addr)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Conn, *bufio.Reader, error) { _ = c.Close(); return nil, nil, err }
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET " + spec.Path + " HTTP/1.1\r\nHost: " + spec.Addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(c, 4096)
	status, err := br.ReadString('\n')
	if err != nil {
		return fail(err)
	}
	if len(status) < 12 || status[9:12] != "101" {
		return fail(fmt.Errorf("upgrade: %q", status))
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return fail(err)
		}
		if l == "\r\n" {
			break
		}
	}
	if spec.Path == "/v1/live" {
		auth, _ := json.Marshal(map[string]any{"type": "auth", "token": spec.Token})
		sub, _ := json.Marshal(map[string]any{"type": "subscribe", "site": spec.Site, "views": spec.Views})
		if _, err := c.Write(append(maskedText(auth), maskedText(sub)...)); err != nil {
			return fail(err)
		}
		op, payload, err := readLeanFrame(br, nil)
		if err != nil || op != wsText || !bytes.Contains(payload, []byte(`"snapshot"`)) {
			return fail(fmt.Errorf("first frame: op %d %.80q %v", op, payload, err))
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, br, nil
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

// readLeanFrame reads one server frame into buf (grown as needed).
func readLeanFrame(br *bufio.Reader, buf []byte) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, buf, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return 0, buf, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return 0, buf, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	if h[1]&0x80 != 0 {
		return 0, buf, errors.New("masked server frame")
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(br, buf)
	return h[0] & 0x0f, buf, err
}

var leanTimeKey = []byte(`"changes":{"time":`)

// leanPong answers a server's ping (masked, empty).
var leanPong = []byte{0x80 | wsPong, 0x80, 0, 0, 0, 0}

// leanRead counts the messages of one connection until it ends, recording
// each delta's delay after its state time when rec is set, and answers
// pings. It reports whether the server closed the connection.
func leanRead(c net.Conn, br *bufio.Reader, frames *atomic.Int64, rec bool, record func(us int64)) (serverClosed bool) {
	var buf []byte
	for {
		op, p, err := readLeanFrame(br, buf)
		buf = p
		if err != nil {
			return false
		}
		now := time.Now()
		switch op {
		case wsClose:
			return true
		case wsPing:
			_, _ = c.Write(leanPong)
		case wsText:
			frames.Add(1)
			if !rec {
				continue
			}
			if i := bytes.Index(p, leanTimeKey); i >= 0 {
				rest := p[i+len(leanTimeKey):]
				if j := bytes.IndexAny(rest, ",}"); j > 0 {
					if ms, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
						record(now.Sub(time.UnixMilli(ms)).Microseconds())
					}
				}
			}
		}
	}
}
