//go:build !linux

package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// openFleet opens spec.N connections, each read by a goroutine of its own
// (the portable client; Linux reads them with epoll). stop closes them and
// waits for the readers.
func openFleet(spec fleetSpec, st *fleetStats) (stop func(), err error) {
	conns := make([]net.Conn, spec.N)
	var wg sync.WaitGroup
	stop = func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
		wg.Wait()
	}
	err = dialAll(spec.N, func(i int) error {
		c, br, err := dialLean(spec)
		if err != nil {
			return err
		}
		conns[i] = c
		rec := spec.RecordEvery > 0 && i%spec.RecordEvery == 0
		wg.Go(func() { // owned: waited on by stop, ended by closing c
			if leanRead(c, br, st, rec) {
				st.closed.Add(1)
			}
		})
		return nil
	})
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// dialLean opens one WebSocket: a hand-written upgrade, then (for the live
// path) auth and subscribe, and waits for the snapshot on the live path.
func dialLean(spec fleetSpec) (net.Conn, *bufio.Reader, error) {
	c, err := net.Dial("tcp", spec.Addr)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Conn, *bufio.Reader, error) { _ = c.Close(); return nil, nil, err }
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, upgradeRequest(spec)); err != nil {
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
		if _, err := c.Write(subscribeFrames(spec)); err != nil {
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
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(br, buf)
	return h[0] & 0x0f, buf, err
}

// leanRead counts the messages of one connection until it ends, recording
// delays when rec is set, and answers pings. It reports whether the server
// closed the connection.
func leanRead(c net.Conn, br *bufio.Reader, st *fleetStats, rec bool) (serverClosed bool) {
	var buf []byte
	for {
		op, p, err := readLeanFrame(br, buf)
		buf = p
		if err != nil {
			return false
		}
		switch op {
		case wsClose:
			return true
		case wsPing:
			_, _ = c.Write(leanPong)
		case wsText:
			st.text(p, time.Now(), rec)
		}
	}
}
