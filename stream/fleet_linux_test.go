//go:build linux

package stream

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// openFleet opens spec.N connections on raw sockets and reads them with
// epoll, one reader per CPU: one read system call per message, no
// goroutine per connection, so that the clients take as little of the CPU
// the server shares with them as they can. stop closes them and waits.
func openFleet(spec fleetSpec, st *fleetStats) (stop func(), err error) {
	conns := make([]*pollConn, spec.N)
	err = dialAll(spec.N, func(i int) error {
		pc, err := dialPoll(spec)
		if err != nil {
			return err
		}
		pc.rec = spec.RecordEvery > 0 && i%spec.RecordEvery == 0
		conns[i] = pc
		return nil
	})
	closeAll := func() {
		for _, pc := range conns {
			if pc != nil {
				_ = syscall.Close(pc.fd)
			}
		}
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	maxFD := 0
	for _, pc := range conns {
		maxFD = max(maxFD, pc.fd)
	}
	byFD := make([]*pollConn, maxFD+1)
	for _, pc := range conns {
		byFD[pc.fd] = pc
	}
	var done atomic.Bool
	var readers sync.WaitGroup
	w := runtime.GOMAXPROCS(0)
	for k := range w {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return nil, err
		}
		for i := k; i < len(conns); i += w {
			pc := conns[i]
			if len(pc.part) > 0 { // what arrived with the handshake
				pc.part = pc.consume(pc.part, time.Now(), st)
			}
			ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(pc.fd)}
			if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pc.fd, &ev); err != nil {
				return nil, err
			}
		}
		readers.Go(func() { // owned: waited on by stop
			defer syscall.Close(epfd)
			pollRead(epfd, byFD, st, &done)
		})
	}
	return func() {
		done.Store(true)
		readers.Wait()
		closeAll()
	}, nil
}

// pollConn is one client connection of the epoll fleet.
type pollConn struct {
	fd     int
	rec    bool   // records delays
	part   []byte // the start of a frame whose rest has not arrived
	closed bool
}

// pollGather is how long a reader lets messages gather after a batch:
// without it each message would wake the reader (and the server pays for
// that wake-up in its write). It adds at most this much to a delay.
const pollGather = time.Millisecond

// pollRead reads the ready connections until done is set.
func pollRead(epfd int, byFD []*pollConn, st *fleetStats, done *atomic.Bool) {
	events := make([]syscall.EpollEvent, 1024)
	buf := make([]byte, 256<<10)
	for !done.Load() {
		n, err := syscall.EpollWait(epfd, events, 100)

		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		now := time.Now()
		for _, ev := range events[:n] {
			pc := byFD[ev.Fd]
			if pc.closed {
				continue
			}
			k, err := syscall.Read(pc.fd, buf)
			if k <= 0 {
				if err == syscall.EAGAIN || err == syscall.EINTR {
					continue
				}
				pc.closed = true // connection ended
				_ = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_DEL, pc.fd, nil)
				continue
			}
			data := buf[:k]
			if len(pc.part) > 0 {
				data = append(pc.part, data...)
			}
			rest := pc.consume(data, now, st)
			pc.part = append(pc.part[:0], rest...)
			if pc.closed {
				_ = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_DEL, pc.fd, nil)
			}
		}
		if n > 0 {
			time.Sleep(pollGather)
		}
	}
}

// consume handles the complete frames at the start of data and returns the
// rest.
func (pc *pollConn) consume(data []byte, now time.Time, st *fleetStats) []byte {
	for !pc.closed {
		op, p, n, ok := parseFrame(data)
		if !ok {
			break
		}
		data = data[n:]
		switch op {
		case wsText:
			st.text(p, now, pc.rec)
		case wsPing:
			_, _ = syscall.Write(pc.fd, leanPong)
		case wsClose:
			pc.closed = true
			st.closed.Add(1)
		}
	}
	return data
}

// dialPoll opens one WebSocket on a raw socket: the upgrade, then (for the
// live path) auth and subscribe and the snapshot, with blocking system
// calls bounded by 30 s; then the socket is made non-blocking.
func dialPoll(spec fleetSpec) (*pollConn, error) {
	addr, err := net.ResolveTCPAddr("tcp4", spec.Addr)
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*pollConn, error) { _ = syscall.Close(fd); return nil, err }
	tv := syscall.NsecToTimeval(int64(30 * time.Second))
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	sa := &syscall.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	// Blocking calls return EINTR when the runtime's preemption signal
	// arrives; a connect then goes on, and reports EALREADY until it is done.
	for {
		err := syscall.Connect(fd, sa)
		if err == nil || err == syscall.EISCONN {
			break
		}
		if err != syscall.EINTR && err != syscall.EALREADY {
			return fail(err)
		}
		time.Sleep(time.Millisecond)
	}
	writeAll := func(b []byte) error {
		for len(b) > 0 {
			n, err := syscall.Write(fd, b)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	var got []byte
	readMore := func() error {
		var b [4096]byte
		n, err := syscall.Read(fd, b[:])
		for err == syscall.EINTR {
			n, err = syscall.Read(fd, b[:])
		}
		if n <= 0 {
			if err == nil {
				err = errors.New("connection closed")
			}
			return err
		}
		got = append(got, b[:n]...)
		return nil
	}
	if err := writeAll([]byte(upgradeRequest(spec))); err != nil {
		return fail(err)
	}
	end := -1
	for end < 0 {
		if err := readMore(); err != nil {
			return fail(err)
		}
		end = bytes.Index(got, []byte("\r\n\r\n"))
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 101")) {
		return fail(fmt.Errorf("upgrade: %.40q", got))
	}
	got = got[end+4:]
	if spec.Path == "/v1/live" {
		if err := writeAll(subscribeFrames(spec)); err != nil {
			return fail(err)
		}
		for {
			op, p, n, ok := parseFrame(got)
			if ok {
				if op != wsText || !bytes.Contains(p, []byte(`"snapshot"`)) {
					return fail(fmt.Errorf("first frame: op %d %.80q", op, p))
				}
				got = got[n:]
				break
			}
			if err := readMore(); err != nil {
				return fail(err)
			}
		}
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		return fail(err)
	}
	return &pollConn{fd: fd, part: got}, nil
}
