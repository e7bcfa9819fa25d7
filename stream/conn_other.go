//go:build !unix

package stream

import "syscall"

// tryWriteRaw cannot write without blocking here: every frame goes through
// a flusher goroutine.
func tryWriteRaw(syscall.RawConn, []byte) (int, error) { return 0, nil }

// peerClosed cannot tell here; a failed write tells.
func peerClosed(syscall.RawConn) bool { return false }
