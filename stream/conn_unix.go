//go:build unix

package stream

import "syscall"

// tryWriteRaw writes what the socket's send buffer takes of b now, without
// blocking: n is 0 when the buffer is full. It writes to the descriptor
// directly; the caller makes sure nothing else writes to it meanwhile.
func tryWriteRaw(rc syscall.RawConn, b []byte) (n int, err error) {
	cerr := rc.Control(func(fd uintptr) {
		for {
			n, err = syscall.Write(int(fd), b)
			if err != syscall.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return 0, cerr
	}
	if err == syscall.EAGAIN {
		return 0, nil
	}
	return max(n, 0), err
}

// peerClosed reports whether the other end of a socket has closed it (it
// peeks, without consuming what the peer sent).
func peerClosed(rc syscall.RawConn) bool {
	var closed bool
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = (n == 0 && err == nil) || err == syscall.ECONNRESET || err == syscall.EPIPE
	})
	return closed
}
