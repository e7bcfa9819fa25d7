package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/wsnet"
)

// Config configures the WebSocket endpoint (Server). Zero fields take the
// Default* values of limits.go.
type Config struct {
	// HelloTimeout is how long a new connection may take to send hello.
	HelloTimeout time.Duration
	// PingInterval is how often the server pings each connection.
	PingInterval time.Duration
	// ReadTimeout is how long a connection may stay silent (no frame, no
	// pong) before it is closed as dead; keep it above PingInterval.
	ReadTimeout time.Duration
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration
	// FramesPerSecond and FrameBurst are the per-connection frame rate: a
	// client over it is paced (its frames are read only as fast), not refused.
	FramesPerSecond, FrameBurst int
	// PacedFrames is how many frames in a row a connection may be paced
	// before it is closed with CloseRateLimited (see pacer).
	PacedFrames int
	// BusyAfter is how long a frame waits for room in the batcher before the
	// client is sent busy; BusyRetryAfter is the retry_after_ms it carries.
	BusyAfter, BusyRetryAfter time.Duration
	// DedupEntries is how many recently accepted event ids are remembered.
	DedupEntries int
	// MaxSessions and SessionLifetime bound the remembered resumable sessions.
	MaxSessions     int
	SessionLifetime time.Duration
	// ShutdownGrace bounds how long Shutdown waits for connections to end
	// when its context has no earlier deadline.
	ShutdownGrace time.Duration
	// Publisher receives accepted events for the live view. Default: none.
	Publisher Publisher
	// Enricher fills derived fields of each valid event. Default: none.
	Enricher Enricher
	// Presence hears of tracker connections for "online now". Default: none.
	Presence Presence
	// DropBots discards events the enricher flags as bots instead of storing
	// them flagged. They are answered as accepted and counted as rejected
	// with field "bot". Default: keep them flagged.
	DropBots bool
}

func (c Config) hooks(m *Metrics) hooks {
	p := c.Publisher
	if p == nil {
		p = noPublisher{}
	}
	pr := c.Presence
	if pr == nil {
		pr = noPresence{}
	}
	return hooks{enricher: c.Enricher, publisher: p, presence: pr, dropBots: c.DropBots, m: m}
}

// hooks are the per-event steps every ingest path shares.
type hooks struct {
	enricher  Enricher
	publisher Publisher
	presence  Presence
	dropBots  bool
	m         *Metrics
}

// enrich fills the derived fields of events, all sent by c, and returns
// those to keep: events[:n], in order.
func (h *hooks) enrich(events []Event, c Client) []Event {
	if h.enricher == nil || len(events) == 0 {
		return events
	}
	h.enricher.Enrich(events, c)
	if !h.dropBots {
		return events
	}
	kept := 0
	for i := range events {
		if events[i].IsBot {
			h.m.rejected.WithLabelValues("bot").Inc()
			continue
		}
		if kept != i {
			events[kept] = events[i]
		}
		kept++
	}
	clear(events[kept:])
	return events[:kept]
}

// publish hands events to the live view (see detachLive).
func (h *hooks) publish(site Site, conn uint64, events []Event) {
	if _, none := h.publisher.(noPublisher); none || len(events) == 0 {
		return
	}
	detachLive(events)
	h.publisher.Publish(site, conn, events)
}

func (c *Config) withDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HelloTimeout, DefaultHelloTimeout)
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.ReadTimeout, c.PingInterval+10*time.Second)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.BusyAfter, DefaultBusyAfter)
	def(&c.BusyRetryAfter, DefaultBusyRetryAfter)
	def(&c.SessionLifetime, DefaultSessionLifetime)
	def(&c.ShutdownGrace, DefaultShutdownGrace)
	if c.FramesPerSecond <= 0 {
		c.FramesPerSecond = DefaultFramesPerSecond
	}
	if c.FrameBurst <= 0 {
		c.FrameBurst = max(DefaultFrameBurst, c.FramesPerSecond)
	}
	if c.PacedFrames <= 0 {
		c.PacedFrames = DefaultPacedFrames
	}
	if c.DedupEntries <= 0 {
		c.DedupEntries = DefaultDedupEntries
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.Publisher == nil {
		c.Publisher = noPublisher{}
	}
}

// Publisher hands accepted events to the live stream. Publish is called on the
// connection's goroutine with events that are accepted but not yet committed,
// each event id once per node (within the dedup window); it must not block and
// must not keep the slice.
// conn is the tracker connection the events came over (as told to Presence),
// 0 for HTTP.
type Publisher interface {
	Publish(site Site, conn uint64, events []Event)
}

type noPublisher struct{}

func (noPublisher) Publish(Site, uint64, []Event) {}

// Presence hears of tracker connections opening, showing life and closing,
// for "online now". Calls come from the connection's goroutines and must not
// block.
type Presence interface {
	Connected(site uuid.UUID, conn uint64)
	Heartbeat(site uuid.UUID, conn uint64)
	Disconnected(site uuid.UUID, conn uint64)
}

type noPresence struct{}

func (noPresence) Connected(uuid.UUID, uint64)    {}
func (noPresence) Heartbeat(uuid.UUID, uint64)    {}
func (noPresence) Disconnected(uuid.UUID, uint64) {}

// Enricher fills the derived fields of valid events (visitor hash, device,
// geo, channel) from what is known about the client that sent them all.
// Events of one call share their site and received time.
type Enricher interface {
	Enrich(events []Event, c Client)
}

// Client is what the server knows about the sender of an event. IP is never
// logged or stored as such.
type Client struct {
	IP        netip.Addr
	UserAgent string
	// ServerSide is set when a server sent the event on the visitor's behalf
	// (Segment's libraries): an empty UserAgent then says nothing about the visitor.
	ServerSide bool
	// VisitorKey, when set, identifies the visitor instead of IP and user agent
	// (a server-side sender's anonymous or user id).
	VisitorKey string
}

// Tenancy is the part of *auth.Store the endpoint uses.
type Tenancy interface {
	siteDirectory
	tenantQuotas
	resumeTokens
	identityVerifier
}

type siteDirectory interface {
	SiteByPublicKey(key string) (auth.Site, error)
}

type tenantQuotas interface {
	AcquireConnection(org uuid.UUID) (release func(), d auth.Decision)
	eventQuotas
}

type resumeTokens interface {
	IssueResumeToken(site uuid.UUID, session string) (string, error)
	VerifyResumeToken(raw string, site uuid.UUID) (string, error)
}

type identityVerifier interface {
	VerifyIdentityToken(raw string, site auth.Site) (string, error)
}

// Server is the ingest WebSocket endpoint, GET /v1/ingest (protocol v1).
type Server struct {
	cfg      Config
	tenancy  Tenancy
	batcher  *Batcher
	log      *slog.Logger
	m        *Metrics
	dedup    *dedup
	sessions *sessions
	upgrader fws.FastHTTPUpgrader
	now      func() time.Time
	hooks    hooks
	connIDs  atomic.Uint64
	// frameBufs holds *frameBuf: a connection borrows one only while it
	// reads and handles a frame, so an idle one holds none.
	frameBufs sync.Pool

	mu      sync.Mutex
	closing bool
	conns   map[*wsConn]struct{}
	wg      sync.WaitGroup // one per connection handler
}

// NewServer returns the WebSocket endpoint. Events go to b; sites, quotas and
// tokens come from t (an *auth.Store).
func NewServer(cfg Config, t Tenancy, b *Batcher, log *slog.Logger, m *Metrics) *Server {
	cfg.withDefaults()
	s := &Server{cfg: cfg, tenancy: t, batcher: b, log: log, m: m,
		dedup: newDedup(cfg.DedupEntries), sessions: newSessions(cfg.MaxSessions, cfg.SessionLifetime),
		now: time.Now, conns: make(map[*wsConn]struct{}), hooks: cfg.hooks(m)}
	s.upgrader = fws.FastHTTPUpgrader{
		HandshakeTimeout: cfg.HelloTimeout,
		ReadBufferSize:   1 << 10,
		WriteBufferSize:  1 << 10,
		WriteBufferPool:  &sync.Pool{},
		// handle has checked the Origin against the site's own list.
		CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
	}
	return s
}

// Register adds GET /v1/ingest to r.
func (s *Server) Register(r fiber.Router) {
	r.Get("/v1/ingest", s.handle)
}

// handle refuses, before any upgrade, what must never become a WebSocket:
// not an upgrade (426), shutting down (503), an unknown site key or a foreign
// Origin (403); then it upgrades. The connection holds only what serve needs
// (not the request's headers, query and cookies, as Fiber's websocket
// middleware keeps them).
func (s *Server) handle(c *fiber.Ctx) error {
	if !fws.FastHTTPIsWebSocketUpgrade(c.Context()) {
		return fail(c, fiber.StatusUpgradeRequired, "GET /v1/ingest is a WebSocket endpoint (docs/protocol.md)")
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(RetryAfterBusy.Seconds())))
		return fail(c, fiber.StatusServiceUnavailable, "the server is shutting down; retry later")
	}
	site, err := s.tenancy.SiteByPublicKey(c.Query("site"))
	if err != nil {
		return fail(c, fiber.StatusForbidden, "unknown site key")
	}
	if err := auth.CheckOrigin(site, c.Get(fiber.HeaderOrigin)); err != nil {
		return fail(c, fiber.StatusForbidden, "origin not allowed for this site")
	}
	ip := auth.ClientAddr(c)
	// The user agent points into the request's buffer, which the server
	// keeps until the upgraded connection's handler returns.
	client := Client{IP: ip, UserAgent: truncate(c.Get(fiber.HeaderUserAgent), 512)}
	err = s.upgrader.Upgrade(c.Context(), func(ws *fws.Conn) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("ingest connection panicked", "panic", fmt.Sprint(r))
				closeConn(ws, CloseInternalError, "internal error", s.cfg.WriteTimeout)
				drainAfterClose(ws)
			}
		}()
		s.serve(ws, site, client)
	})
	if err != nil {
		return fiber.ErrUpgradeRequired // the upgrader has answered the request
	}
	return nil
}

// Shutdown stops accepting connections, closes every open one with
// CloseGoingAway, and waits until their handlers have returned or ctx (or
// ShutdownGrace) ends. Events already handed to the batcher are written by
// the batcher's own shutdown; their acks are lost with the connection, and the
// clients resend them (stored once).
func (s *Server) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownGrace)
	defer cancel()
	s.mu.Lock()
	s.closing = true
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.end(CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.kill()
		}
		<-done
		return fmt.Errorf("ingest: shutdown: connections still open after the grace period: %w", ctx.Err())
	}
}

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

// handleEvents validates an events frame and hands its valid events to the
// batcher; false ends the connection.
func (c *wsConn) handleEvents(f *clientFrame) bool {
	s := c.s
	if f.Seq <= c.lastSeq {
		c.end(CloseProtocolError, "seq "+strconv.FormatInt(f.Seq, 10)+" does not grow (last "+strconv.FormatInt(c.lastSeq, 10)+")")
		return false
	}
	c.lastSeq = f.Seq
	s.m.acksPending.Inc()
	if n := len(f.Events); n == 0 || n > MaxEventsPerFrame {
		c.acks.push(f.Seq, true)
		return c.sendError(errorFrame{Seq: f.Seq, Index: -1, Code: codeBadFrame,
			Message: "a frame holds 1 to " + strconv.Itoa(MaxEventsPerFrame) + " events, not " + strconv.Itoa(n)}) == nil
	}

	received := s.now().UTC().Truncate(time.Second)
	events := make([]Event, len(f.Events)) // owned by the batcher after Add
	p := eventParser{block: 4*len(f.Events) + 8}
	n := 0
	for i, raw := range f.Events {
		var evErr *EventError
		if len(raw) > MaxEventBytes {
			evErr = &EventError{Index: i, Field: "event", Message: "is " + strconv.Itoa(len(raw)) + " bytes, more than the limit of " + strconv.Itoa(MaxEventBytes)}
		} else {
			evErr = p.parse(&events[n], raw, i, c.isite, received)
		}
		if evErr != nil {
			events[n] = Event{}
			s.m.rejected.WithLabelValues(metricField(evErr.Field)).Inc()
			if c.sendError(errorFrame{Seq: f.Seq, Index: i, Code: codeInvalidEvent, Field: evErr.Field, Message: evErr.Message}) != nil {
				return false
			}
			continue
		}
		if c.userID != "" {
			events[n].UserID = c.userID
		}
		n++
	}
	events = s.hooks.enrich(events[:n], c.client)
	s.m.received.Add(float64(len(f.Events)))
	if len(events) == 0 {
		c.acks.push(f.Seq, true)
		return true
	}
	write, fresh, dups := s.dedup.filter(c.site.ID, events)
	s.m.duplicates.Add(float64(dups))
	if len(write) == 0 {
		c.acks.push(f.Seq, true)
		return true
	}
	// The quota's limits apply to what the batcher is to take: a resend of
	// events the node has committed costs nothing.
	org, n := c.site.OrgID, len(write)
	if d := s.tenancy.AllowEvents(org, n); !d.Allowed {
		code, reason := d.CloseFrame()
		c.end(code, reason)
		return false
	}
	s.hooks.publish(c.isite, c.id, fresh)

	ids := make([]uuid.UUID, len(write))
	for i := range write {
		ids[i] = write[i].ID
	}
	seq, site := f.Seq, c.site.ID
	c.acks.push(seq, false)
	done := func(err error) {
		s.tenancy.SettleEvents(org, n)
		if err != nil {
			// Given up at shutdown: never acknowledged, the client resends,
			// and nothing holds the ids any more.
			s.dedup.forget(site, ids)
			return
		}
		s.dedup.committed(site, ids)
		s.sessions.ack(c.session, seq, s.now())
		c.acks.commit(seq)
	}
	if !c.add(write, done) {
		s.tenancy.SettleEvents(org, n)
		return false
	}
	// Remembered only once the batcher holds them: when the connection ends
	// while add waits for room, nothing holds these events, and the same ids
	// sent again (over HTTP, or after a reconnect) must not look seen.
	s.dedup.rememberIDs(site, ids)
	s.m.accepted.Add(float64(len(write)))
	return true
}

// add hands events to the batcher, waiting (without reading further frames)
// while its buffer is full, and telling the client busy after BusyAfter. It
// reports whether the batcher took them; false ends the connection.
func (c *wsConn) add(events []Event, done func(error)) bool {
	s := c.s
	if s.batcher.tryAdd(events, done) {
		return true
	}
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.BusyAfter)
	err := s.batcher.Add(ctx, events, done)
	cancel()
	if err != nil && !errors.Is(err, ErrClosed) && c.ctx.Err() == nil {
		s.m.busy.Inc()
		if c.write(appendBusy(nil, s.cfg.BusyRetryAfter.Milliseconds())) != nil {
			return false
		}
		err = s.batcher.Add(c.ctx, events, done)
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrClosed):
		c.end(CloseGoingAway, "server shutting down")
	}
	return false
}

// startBackground counts a goroutine of the connection about to start;
// false once the connection has ended.
func (c *wsConn) startBackground() bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.bgStopped {
		return false
	}
	c.bg.Add(1)
	return true
}

// stopBackground starts no more goroutines and waits for those running.
func (c *wsConn) stopBackground() {
	c.bgMu.Lock()
	c.bgStopped = true
	c.bgMu.Unlock()
	c.bg.Wait()
}

// startAckWriter starts a goroutine that sends acks until none is left to
// send (ackTracker calls it with its lock held); false if it did not start.
func (c *wsConn) startAckWriter() bool {
	if !c.startBackground() {
		return false
	}
	go func() { // owned: serve waits in stopBackground
		defer c.bg.Done()
		c.writeAcks()
	}()
	return true
}

// writeAcks sends the acks of committed frames as they come.
func (c *wsConn) writeAcks() {
	var buf [48]byte
	for c.ctx.Err() == nil {
		seq, n := c.acks.takeOrStop()
		if n == 0 {
			return
		}
		c.s.m.acksPending.Sub(float64(n))
		if c.write(appendAck(buf[:0], seq)) != nil {
			return
		}
	}
}

// ping sends a WebSocket ping and sets the next one (the pinger's func).
func (c *wsConn) ping() {
	if !c.startBackground() {
		return
	}
	defer c.bg.Done()
	if c.ctx.Err() != nil {
		return
	}
	if err := c.ws.WriteControl(fws.PingMessage, nil, c.s.now().Add(c.s.cfg.WriteTimeout)); err != nil {
		c.fail()
		return
	}
	c.pinger.Reset(c.s.cfg.PingInterval)
}

// write sends one text frame; a failure ends the connection.
func (c *wsConn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(c.s.now().Add(c.s.cfg.WriteTimeout))
	if err := c.ws.WriteMessage(fws.TextMessage, msg); err != nil {
		c.fail()
		return err
	}
	return nil
}

func (c *wsConn) sendError(e errorFrame) error {
	e.Type = frameError
	msg, _ := json.Marshal(e)
	return c.write(msg)
}

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

// ackTracker turns commits of frames (in any order) into cumulative acks.
type ackTracker struct {
	mu      sync.Mutex
	pending []ackFrame    // in seq order
	acked   int64         // highest seq whose frames up to it are all answered
	sent    int64         // highest seq handed to the writer
	unsent  int           // frames answered since the last take
	signal  chan struct{} // if not nil, told of frames to answer
	// start, if not nil, starts a writer when there are frames to answer
	// and none is running (writing); false if it did not.
	start   func() bool
	writing bool
}

type ackFrame struct {
	seq  int64
	done bool
}

// push records a received events frame; done frames need no commit.
func (a *ackTracker) push(seq int64, done bool) {
	a.mu.Lock()
	a.pending = append(a.pending, ackFrame{seq, done})
	a.advance()
	a.mu.Unlock()
}

// commit marks frame seq as committed.
func (a *ackTracker) commit(seq int64) {
	a.mu.Lock()
	for i := range a.pending {
		if a.pending[i].seq == seq {
			a.pending[i].done = true
			break
		}
	}
	a.advance()
	a.mu.Unlock()
}

func (a *ackTracker) advance() {
	n := 0
	for n < len(a.pending) && a.pending[n].done {
		a.acked = a.pending[n].seq
		n++
	}
	if n == 0 {
		return
	}
	a.pending = append(a.pending[:0], a.pending[n:]...)
	a.unsent += n
	if a.signal != nil {
		select {
		case a.signal <- struct{}{}:
		default:
		}
	}
	if a.start != nil && !a.writing {
		a.writing = a.start()
	}
}

// take returns the seq to acknowledge and how many frames it answers (0: none new).
func (a *ackTracker) take() (int64, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.takeLocked()
}

func (a *ackTracker) takeLocked() (int64, int) {
	n := a.unsent
	a.unsent = 0
	if a.acked <= a.sent {
		return a.sent, n
	}
	a.sent = a.acked
	return a.acked, n
}

// takeOrStop is take for the writer: with nothing to answer, the writer
// stops (and the next answered frame starts another).
func (a *ackTracker) takeOrStop() (int64, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq, n := a.takeLocked()
	if n == 0 {
		a.writing = false
	}
	return seq, n
}

func (a *ackTracker) pendingCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending) + a.unsent
}
