package ingest

import (
	"strconv"
	"time"

	fws "github.com/fasthttp/websocket"
)

// fail ends a connection whose writes fail: the peer is gone or too slow.
func (c *wsConn) fail() {
	c.closed.Do(func() {
		c.cancel()
		_ = c.sock.Close()
	})
}

// finish marks the connection as over; later end and kill calls do nothing.
func (c *wsConn) finish() {
	c.closed.Do(func() {})
	c.lifeMu.Lock()
	c.finished = true
	c.lifeMu.Unlock()
}

// kill drops the TCP connection of a handler that did not end in time.
func (c *wsConn) kill() {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if !c.finished {
		_ = c.sock.Close()
	}
}

// end closes the connection with a close code and reason, once: it sends
// the close frame and ends the connection's context. The reader stops
// handling frames, and serve reads what the client still sends until its
// close answer before the socket closes (drainAfterClose).
func (c *wsConn) end(code int, reason string) {
	c.closed.Do(func() {
		c.s.m.closes.WithLabelValues(strconv.Itoa(code)).Inc()
		c.closing.Store(true)
		// The close frame goes out before the connection's context ends, so
		// nothing woken by the cancellation can close the socket under it.
		c.wmu.Lock()
		closeConn(c.ws, code, reason, c.s.cfg.WriteTimeout)
		c.wmu.Unlock()
		c.cancel()
		// A reader waiting for the next frame wakes within the drain's time
		// at the latest (readLoop sets its deadline before it looks at the
		// context, and this one is set after the context ended).
		_ = c.ws.SetReadDeadline(time.Now().Add(CloseDrainTimeout))
	})
}

// closeConn sends a close frame.
func closeConn(ws *fws.Conn, code int, reason string, timeout time.Duration) {
	_ = ws.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(code, truncate(reason, 120)), time.Now().Add(timeout))
}

// drainAfterClose reads and discards what the client sends after the
// server's close frame, until the client's own close frame answers it, the
// connection fails, or CloseDrainTimeout passes; then the socket may close.
// A client that is still sending when the server closes (a tracker resending
// its queue) would otherwise have data unread at the server, whose kernel
// then answers the close with a reset instead of an orderly end, and a
// browser reports 1006 instead of the close code and reason.
func drainAfterClose(ws *fws.Conn) {
	_ = ws.SetReadDeadline(time.Now().Add(CloseDrainTimeout))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return // the client's close (a *CloseError), the deadline, or a failed connection
		}
	}
}
