package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	fws "github.com/fasthttp/websocket"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/wsnet"
)

// wsConn is one ingest connection.
type wsConn struct {
	id      uint64 // unique on this node, for presence
	s       *Server
	ws      *fws.Conn
	sock    net.Conn // the TCP socket itself (fail and kill close it)
	site    auth.Site
	isite   Site
	client  Client
	session string
	userID  string
	lastSeq int64 // highest seq received (or welcome's last_seq)
	ctx     context.Context
	cancel  context.CancelFunc

	wmu      sync.Mutex  // serialises data writes
	closed   sync.Once   // the close (or drop) happens once
	closing  atomic.Bool // end sent a close frame: drain before the socket closes
	lifeMu   sync.Mutex
	finished bool // serve has returned: ws belongs to the library again
	acks     ackTracker
	pinger   *time.Timer // set under bgMu

	// bg counts the goroutines of the connection besides serve's own (an
	// ack writer, a ping); serve waits for them. bgStopped: start no more.
	bgMu      sync.Mutex
	bgStopped bool
	bg        sync.WaitGroup

	pacer pacer
}

// serve runs one connection: hello, then frames until it ends.
func (s *Server) serve(ws *fws.Conn, site auth.Site, client Client) {
	ws.SetReadLimit(MaxFrameBytes)

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		closeConn(ws, CloseGoingAway, "server shutting down", s.cfg.WriteTimeout)
		drainAfterClose(ws)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	conn := &wsConn{id: s.connIDs.Add(1), s: s, ws: ws, sock: wsnet.Socket(ws), site: site, client: client, ctx: ctx, cancel: cancel,
		isite: SiteOf(site),
		pacer: newPacer(s.cfg.FramesPerSecond, s.cfg.FrameBurst, s.cfg.PacedFrames)}
	conn.acks.start = conn.startAckWriter
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		if conn.closing.Load() {
			// Before the socket closes: what the client sent after the
			// close frame must not be left unread (see drainAfterClose).
			drainAfterClose(ws)
		}
		conn.finish()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		cancel()
		s.m.acksPending.Sub(float64(conn.acks.pendingCount()))
		s.wg.Done()
	}()

	if !s.addrs.acquire(client.IP) {
		conn.end(auth.CloseQuotaExceeded, ReasonAddressConnections+" retry_after="+strconv.Itoa(int(DefaultAddressRetryAfter.Seconds())))
		return
	}
	defer s.addrs.release(client.IP)
	release, d := s.tenancy.AcquireConnection(site.OrgID)
	if !d.Allowed {
		code, reason := d.CloseFrame()
		conn.end(code, reason)
		return
	}
	defer release()
	s.m.connections.Inc()
	defer s.m.connections.Dec()

	if !conn.hello() {
		return
	}
	s.hooks.presence.Connected(site.ID, conn.id)
	defer s.hooks.presence.Disconnected(site.ID, conn.id)
	// No goroutine waits for acks or pings while a connection is idle: acks
	// start a writer when there are some to send, pings come from a timer.
	conn.bgMu.Lock() // ping reads pinger after taking bgMu
	conn.pinger = time.AfterFunc(s.cfg.PingInterval, conn.ping)
	conn.bgMu.Unlock()
	conn.readLoop()
	cancel()
	conn.stopBackground()
	conn.pinger.Stop()
}

// hello reads and answers the hello frame; false ends the connection.
func (c *wsConn) hello() bool {
	s := c.s
	_ = c.ws.SetReadDeadline(s.now().Add(s.cfg.HelloTimeout))
	mt, data, err := c.ws.ReadMessage()
	if err != nil {
		c.readFailed(err, CloseHelloTimeout, "no hello within "+s.cfg.HelloTimeout.String())
		return false
	}
	if mt != fws.TextMessage {
		c.end(CloseProtocolError, "frames are JSON text")
		return false
	}
	f, err := decodeFrame(data)
	if err != nil {
		c.end(CloseProtocolError, err.Error())
		return false
	}
	s.m.frames.WithLabelValues(f.Type).Inc()
	if f.Type != frameHello {
		c.end(CloseProtocolError, "the first frame must be hello")
		return false
	}
	if f.V != ProtocolVersion {
		c.end(CloseUnsupportedVersion, "protocol version "+strconv.Itoa(f.V)+" is not supported; use 1")
		return false
	}
	if f.Identity != "" {
		uid, err := s.tenancy.VerifyIdentityToken(f.Identity, c.site)
		if err != nil {
			c.end(CloseAuthFailed, "identity token refused")
			return false
		}
		c.userID = uid
	}
	resumed := false
	if f.Resume != "" {
		if id, err := s.tenancy.VerifyResumeToken(f.Resume, c.site.ID); err == nil {
			c.session, resumed = id, true
		}
	}
	if c.session == "" {
		c.session = newSessionID()
	}
	c.lastSeq = s.sessions.open(c.session, s.now())
	c.acks.acked, c.acks.sent = c.lastSeq, c.lastSeq
	token, err := s.tenancy.IssueResumeToken(c.site.ID, c.session)
	if err != nil {
		s.log.Error("issue resume token", "site_id", c.site.ID, "err", err)
		c.end(CloseInternalError, "cannot issue a resume token")
		return false
	}
	welcome, _ := json.Marshal(welcomeFrame{Type: frameWelcome, V: ProtocolVersion, Session: c.session, Resume: token,
		Resumed: resumed, LastSeq: c.lastSeq, Limits: welcomeLimits{MaxFrameBytes: MaxFrameBytes,
			MaxEventsPerFrame: MaxEventsPerFrame, FramesPerSecond: s.cfg.FramesPerSecond,
			PingIntervalMS: s.cfg.PingInterval.Milliseconds()}})
	s.log.Debug("ingest session", "site_id", c.site.ID, "session", c.session, "resumed", resumed, "last_seq", c.lastSeq,
		"sdk", f.SDK, "sdk_version", f.SDKVersion)
	return c.write(welcome) == nil
}

// readLoop reads frames until the connection ends.
func (c *wsConn) readLoop() {
	s := c.s
	c.ws.SetPongHandler(func(string) error {
		if c.ctx.Err() != nil {
			return nil // closing: the deadline is the drain's
		}
		s.hooks.presence.Heartbeat(c.site.ID, c.id)
		return c.ws.SetReadDeadline(s.now().Add(s.cfg.ReadTimeout))
	})
	for {
		// The deadline first, then the check: end sets its own deadline after
		// cancelling, so one of the two sees the other (see end).
		_ = c.ws.SetReadDeadline(s.now().Add(s.cfg.ReadTimeout))
		if c.ctx.Err() != nil {
			return // ended by Shutdown: serve reads the client's answer
		}
		mt, fb, err := c.readFrame()
		if err != nil {
			c.readFailed(err, CloseDeadPeer, "nothing received for "+s.cfg.ReadTimeout.String())
			return
		}
		if c.ctx.Err() != nil {
			s.frameBufs.Put(fb) // sent after the close frame: not handled
			return
		}
		ok := c.handleFrame(mt, fb)
		s.frameBufs.Put(fb)
		if !ok {
			return
		}
	}
}

// frameBuf is what reading and decoding one frame borrows from the server's
// pool: the message's bytes and the list of its events.
type frameBuf struct {
	data   []byte
	events []string
}

// frameBufSize is the first size of a frame buffer; it grows to the largest
// frame it has held.
const frameBufSize = 4 << 10

// readFrame reads the next message into a buffer of the server's pool; the
// caller puts it back.
func (c *wsConn) readFrame() (int, *frameBuf, error) {
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	fb, _ := c.s.frameBufs.Get().(*frameBuf)
	if fb == nil {
		fb = &frameBuf{data: make([]byte, 0, frameBufSize)}
	}
	b := fb.data[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			fb.data = b
			c.s.frameBufs.Put(fb)
			return 0, nil, err
		}
	}
	fb.data = b
	return mt, fb, nil
}

// handleFrame answers one message; false ends the connection.
func (c *wsConn) handleFrame(mt int, fb *frameBuf) bool {
	s := c.s
	delay, ok := c.pacer.take(s.now())
	if !ok {
		c.end(CloseRateLimited, "more than "+strconv.Itoa(s.cfg.FramesPerSecond)+" frames per second for "+
			strconv.Itoa(s.cfg.PacedFrames)+" frames in a row")
		return false
	}
	if delay > 0 {
		s.m.paced.Inc()
		if !wait(c.ctx, delay) {
			return false // ended meanwhile (Shutdown)
		}
	}
	if mt != fws.TextMessage {
		c.end(CloseProtocolError, "frames are JSON text")
		return false
	}
	f, err := decodeFrameInto(fb.data, fb.events)
	defer func() {
		clear(f.Events[:cap(f.Events)]) // the pool must not keep the frame's text alive
		fb.events = f.Events[:0]
	}()
	if err != nil {
		c.end(CloseProtocolError, err.Error())
		return false
	}
	s.m.frames.WithLabelValues(f.Type).Inc()
	switch f.Type {
	case framePing:
		s.hooks.presence.Heartbeat(c.site.ID, c.id)
		return c.write(appendPong(nil, f.ID)) == nil
	case frameHello:
		c.end(CloseProtocolError, "hello was already sent")
		return false
	case frameEvents:
		return c.handleEvents(&f)
	}
	return true
}

// readFailed ends the connection after a failed read: timeouts get code,
// a too large frame has had its 1009 from the WebSocket layer, and a peer
// that closed or vanished gets nothing.
func (c *wsConn) readFailed(err error, timeoutCode int, reason string) {
	if c.ctx.Err() != nil {
		return // ended by Shutdown or a write failure
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		c.end(timeoutCode, reason)
	case errors.Is(err, fws.ErrReadLimit):
		c.s.m.closes.WithLabelValues("1009").Inc()
		// The rest of the frame is unread: read it away for CloseDrainTimeout,
		// so that the close frame reaches the client instead of a reset.
		nc := c.ws.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(CloseDrainTimeout))
		_, _ = io.Copy(io.Discard, nc)
	}
}
