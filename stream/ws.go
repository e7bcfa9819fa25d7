package stream

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	fws "github.com/fasthttp/websocket"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/wsnet"
)

// Tenancy is the part of *auth.Store the live endpoints use.
type Tenancy interface {
	Authenticate(bearer string) (*auth.Principal, error)
	VerifySession(raw string) (auth.User, error)
	VisibleSite(p *auth.Principal, site uuid.UUID) (auth.Site, error)
	LiveOrigin() fiber.Handler
}

// Register mounts WS /v1/live and GET /v1/live/sse on r (the app root).
// Do not put auth's Middleware in front: both endpoints authenticate
// themselves (cookie or first frame; Authorization for SSE).
func (h *Hub) Register(r fiber.Router) {
	r.Get("/v1/live", h.preflight, h.upgrade)
	r.Get("/v1/live/sse", h.sse)
}

// Locals of an upgrading request.
const (
	localCookie = "pulse_live_cookie"
)

// preflight refuses, before any upgrade, what must not become a live socket:
// not an upgrade (426), shutting down (503), a foreign Origin (403).
func (h *Hub) preflight(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return fail(c, fiber.StatusUpgradeRequired, "GET /v1/live is a WebSocket endpoint (see GET /v1/live/sse for Server-Sent Events)")
	}
	h.mu.Lock()
	closing := h.closing
	h.mu.Unlock()
	if closing {
		c.Set(fiber.HeaderRetryAfter, "2")
		return fail(c, fiber.StatusServiceUnavailable, "the server is shutting down; retry later")
	}
	if tc, ok := c.Context().Conn().(interface{ SetWriteBuffer(int) error }); ok {
		// Keep the backlog of a slow reader in its queue, where it is
		// coalesced, rather than in a large kernel buffer of stale frames.
		// (After the upgrade the connection is wrapped and this is out of reach.)
		_ = tc.SetWriteBuffer(SocketSendBuffer)
	}
	if c.Get(fiber.HeaderOrigin) == "" {
		// Not a browser: the credential must come in the auth frame; a
		// cookie is ignored (it is only trusted with the dashboard's Origin).
		return c.Next()
	}
	// A browser: only the dashboard's own origin (cross-site WebSocket
	// hijacking). The session cookie is read here, where the headers are, and
	// copied: the subscriber keeps it to re-check it, and Fiber's string
	// points into a request buffer the server reuses.
	c.Locals(localCookie, strings.Clone(c.Cookies(h.sessionCookie())))
	return h.liveOrigin(c)
}

func (h *Hub) sessionCookie() string {
	if h.cfg.SessionCookie != "" {
		return h.cfg.SessionCookie
	}
	return auth.DefaultSessionCookie
}

func fail(c *fiber.Ctx, status int, msg string) error {
	return c.Status(status).JSON(fiber.Map{"error": msg})
}

func (h *Hub) newUpgrader() fiber.Handler {
	return websocket.New(h.serveWS, websocket.Config{
		// Origins stays empty: preflight has checked the Origin.
		HandshakeTimeout: h.cfg.AuthTimeout,
		ReadBufferSize:   1 << 10,
		WriteBufferSize:  1 << 10,
		WriteBufferPool:  &sync.Pool{},
		RecoverHandler: func(c *websocket.Conn) {
			if r := recover(); r != nil {
				h.cfg.Logger.Error("live connection panicked", "panic", fmt.Sprint(r))
				closeWS(c.Conn, CloseInternalError, "internal error")
			}
		},
	})
}

// clientFrame is a frame a live client sends.
type clientFrame struct {
	Type  string          `json:"type"`
	Token string          `json:"token,omitempty"`
	Site  string          `json:"site,omitempty"`
	Views []string        `json:"views,omitempty"`
	ID    json.RawMessage `json:"id,omitempty"`
}

// decodeClientFrame parses one client frame: a JSON object whose type is
// auth, subscribe or ping.
func decodeClientFrame(data []byte) (clientFrame, error) {
	var f clientFrame
	if len(data) > MaxFrameBytes {
		return f, fmt.Errorf("frame over %d bytes", MaxFrameBytes)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("not a JSON object: %v", err)
	}
	switch f.Type {
	case "auth":
		if f.Token == "" || len(f.Token) > auth.MaxTokenLength {
			return f, errors.New("auth needs a token")
		}
	case "subscribe":
		if _, err := uuid.Parse(f.Site); err != nil {
			return f, errors.New("subscribe needs a site id")
		}
		if _, err := ParseViews(f.Views); err != nil {
			return f, err
		}
	case "ping":
		if len(f.ID) > 64 {
			return f, errors.New("ping id over 64 bytes")
		}
	default:
		return f, fmt.Errorf("unknown frame type %q", f.Type)
	}
	return f, nil
}

// credential is what a subscriber authenticated with, kept to re-check it.
type credential struct {
	raw    string
	cookie bool
}

func (h *Hub) authenticate(cr credential) (*auth.Principal, error) {
	if cr.cookie {
		u, err := h.tenancy.VerifySession(cr.raw)
		if err != nil {
			return nil, err
		}
		return &auth.Principal{User: &u, ViaCookie: true}, nil
	}
	return h.tenancy.Authenticate(cr.raw)
}

// expiry is the exp of a JWT credential that has already been verified; zero
// for API keys.
func expiry(raw string) time.Time {
	if strings.HasPrefix(raw, "sk_") {
		return time.Time{}
	}
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &claims); err != nil || claims.ExpiresAt == nil {
		return time.Time{}
	}
	return claims.ExpiresAt.Time
}

// admit checks a subscription request and takes its quota slots, which
// h.release(sub) gives back. It returns the subscriber, or a close code and
// reason.
func (h *Hub) admit(cr credential, siteID uuid.UUID, views View) (*subscriber, int, string) {
	p, err := h.authenticate(cr)
	if err != nil {
		return nil, CloseAuthFailed, "invalid or expired credentials"
	}
	st, err := h.tenancy.VisibleSite(p, siteID)
	if err != nil {
		return nil, CloseForbidden, "no such site for these credentials"
	}
	// Live subscribers have their own budget (MaxSubscribersPerTenant), not
	// the tenant's ingest connections: anyone with the public site key can
	// open those, and must not be able to starve the owner's dashboards.
	if !h.acquire(st.OrgID) {
		return nil, CloseQuotaExceeded, ReasonLiveSubscribers + " retry_after=" + strconv.Itoa(quotaRetryAfter)
	}
	sub := newSubscriber(h, siteID, views, nil)
	sub.cred, sub.tenant = cr, st.OrgID
	if exp := expiry(cr.raw); !exp.IsZero() {
		sub.expires = exp.UnixNano()
	}
	return sub, 0, ""
}

// checkAccess re-validates a subscriber's credential and its right to the
// site; it returns a close code and reason when access ended.
func (h *Hub) checkAccess(sub *subscriber) (int, string, bool) {
	if sub.expires != 0 && time.Now().UnixNano() >= sub.expires {
		return CloseTokenExpired, "token expired", false
	}
	p, err := h.authenticate(sub.cred)
	if err != nil {
		return CloseAccessRevoked, "credentials revoked", false
	}
	if _, err := h.tenancy.VisibleSite(p, sub.siteID); err != nil {
		return CloseAccessRevoked, "site no longer visible", false
	}
	return 0, "", true
}

// quotaRetryAfter is the retry_after of a live subscriber quota refusal, in seconds.
const quotaRetryAfter = 10

// serveWS runs one live socket: auth and subscribe, then frames until it ends.
func (h *Hub) serveWS(c *websocket.Conn) {
	ws := c.Conn
	cookie, _ := c.Locals(localCookie).(string)
	// Authentication, admission and the first snapshot run on a goroutine of
	// their own: the deep stacks of JSON and signature checks would otherwise
	// stay with this goroutine, which reads the socket for its whole life
	// (docs/benchmarks.md, "live": memory per idle subscriber).
	var o wsOpen
	var panicked any
	done := make(chan struct{})
	go func() { // owned: waited on just below
		defer close(done)
		defer func() { panicked = recover() }()
		h.open(ws, cookie, &o)
	}()
	<-done
	if o.sub != nil {
		defer h.release(o.sub)
	}
	if o.tracked {
		defer h.untrack(o.sub)
	}
	if o.subscribed {
		defer h.unsubscribe(o.sub)
	}
	if panicked != nil {
		panic(panicked) // to the RecoverHandler, which closes with CloseInternalError
	}
	if o.subscribed {
		h.read(ws, o.sub)
	}
}

// wsOpen is what open has set up (and serveWS must undo).
type wsOpen struct {
	sub                 *subscriber // admitted: its slots are taken
	tracked, subscribed bool
}

// open reads auth and subscribe, admits the subscriber, and writes its
// snapshot; on a refusal it closes the socket.
func (h *Hub) open(ws *fws.Conn, cookie string, o *wsOpen) {
	ws.SetReadLimit(MaxFrameBytes)
	var cr credential
	if cookie != "" {
		cr = credential{raw: cookie, cookie: true}
	}
	_ = ws.SetReadDeadline(time.Now().Add(h.cfg.AuthTimeout))
	var sf clientFrame
	for {
		f, code, reason := readFrame(ws)
		if code != 0 {
			if code == CloseDeadPeer {
				code, reason = CloseAuthTimeout, "no subscribe within "+h.cfg.AuthTimeout.String()
			}
			h.m.closed(code)
			refuse(ws, code, reason)
			return
		}
		if f.Type == "auth" {
			cr = credential{raw: f.Token}
			if _, err := h.authenticate(cr); err != nil {
				h.m.closed(CloseAuthFailed)
				refuse(ws, CloseAuthFailed, "invalid or expired credentials")
				return
			}
			continue
		}
		if f.Type == "subscribe" {
			sf = f
			break
		}
		// ping before subscribe
		h.m.closed(CloseProtocolError)
		refuse(ws, CloseProtocolError, "subscribe first")
		return
	}
	if cr.raw == "" {
		h.m.closed(CloseAuthFailed)
		refuse(ws, CloseAuthFailed, "no credentials: send auth first or log in to the dashboard")
		return
	}
	siteID, _ := uuid.Parse(sf.Site)
	views, _ := ParseViews(sf.Views)
	sub, code, reason := h.admit(cr, siteID, views)
	if sub == nil {
		h.m.closed(code)
		refuse(ws, code, reason)
		return
	}
	o.sub = sub
	// Once tracked, the hub writes this socket's frames itself (frames
	// encoded once for every subscriber); the library only reads.
	// The sink holds the socket, not fasthttp's wrapper: the hub may still
	// set a deadline or write once more after this handler returned.
	conn := wsnet.Socket(ws)
	out := &wsSink{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		out.raw, _ = sc.SyscallConn()
	}
	sub.out = out
	if !h.track(sub) {
		refuse(ws, CloseGoingAway, "server shutting down")
		return
	}
	o.tracked = true
	ws.SetPingHandler(func(data string) error {
		sub.answer(wsMessage(wsPong, []byte(data)))
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		sub.stop(CloseGoingAway, "client closed", false, code) // echoed by the close frame
		return nil
	})
	ws.SetPongHandler(func(string) error { out.extend(sub, h.cfg.ReadTimeout); return nil })
	own := h.subscribe(sub)
	o.subscribed = true
	if own {
		sub.drain() // the snapshot
	}
}

// read reads the client's frames (pings) until the subscriber ends, waits
// until its close is written, and reads what the client still sends until
// its close answer.
func (h *Hub) read(ws *fws.Conn, sub *subscriber) {
	out := sub.out.(*wsSink)
	for {
		out.extend(sub, h.cfg.ReadTimeout)
		if sub.isEnding() {
			break
		}
		f, code, reason := readFrame(ws)
		if sub.isEnding() {
			break
		}
		if code != 0 {
			sub.stop(code, reason, code == CloseGoingAway, 0) // GoingAway: the connection is gone
			break
		}
		if f.Type != "ping" {
			sub.end(CloseProtocolError, "only ping after subscribe")
			break
		}
		sub.answer(nil)
	}
	sub.wait() // the close frame is written (or cannot be)
	drainAfterClose(ws)
}

// readFrame reads and decodes one client frame; a non-zero code says why
// the socket must close.
func readFrame(ws *fws.Conn) (clientFrame, int, string) {
	mt, data, err := ws.ReadMessage()
	if err != nil {
		var ce *fws.CloseError
		switch {
		case errors.As(err, &ce):
			return clientFrame{}, CloseGoingAway, "client closed"
		case isTimeout(err):
			return clientFrame{}, CloseDeadPeer, "nothing received within the read timeout"
		case errors.Is(err, fws.ErrReadLimit):
			return clientFrame{}, CloseProtocolError, fmt.Sprintf("frame over %d bytes", MaxFrameBytes)
		default:
			return clientFrame{}, CloseGoingAway, "connection lost"
		}
	}
	if mt != fws.TextMessage {
		return clientFrame{}, CloseProtocolError, "binary frames are not part of the protocol"
	}
	f, err := decodeClientFrame(data)
	if err != nil {
		return f, CloseProtocolError, truncateReason(err.Error())
	}
	return f, 0, ""
}

// truncateReason fits a close reason in a control frame (123 bytes).
func truncateReason(s string) string {
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func closeWS(ws *fws.Conn, code int, reason string) {
	_ = ws.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(code, truncateReason(reason)), time.Now().Add(time.Second))
}

// refuse closes a socket open did not admit (or could not track), and reads
// what the client still sends until its close answer (drainAfterClose).
func refuse(ws *fws.Conn, code int, reason string) {
	closeWS(ws, code, reason)
	drainAfterClose(ws)
}

// drainAfterClose reads and discards what the client sends after the
// server's close frame, until the client's own close frame answers it, the
// connection fails, or CloseDrainTimeout passes; then the socket may close.
// Closed with the client's frames unread, the socket would be reset instead
// of ended in order, and a browser that is still sending reports 1006
// instead of the close code and reason.
func drainAfterClose(ws *fws.Conn) {
	_ = ws.SetReadDeadline(time.Now().Add(CloseDrainTimeout))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return // the client's close (a *CloseError), the deadline, or a failed connection
		}
	}
}

// wsSink writes WebSocket frames to the connection under a live socket.
type wsSink struct {
	conn net.Conn
	raw  syscall.RawConn // conn's descriptor, for writes that must not block; nil: none
}

// extend moves the read deadline timeout ahead, unless the subscriber is
// ending: then the reader must wake soon (interrupt sets the flag, then the
// deadline; this sets the deadline, then reads the flag).
func (w *wsSink) extend(sub *subscriber, timeout time.Duration) {
	_ = w.conn.SetReadDeadline(time.Now().Add(timeout))
	if sub.isEnding() {
		w.interrupt()
	}
}

// interrupt wakes the reader at the latest CloseDrainTimeout from now, and
// sooner when the client answers the close frame (or sends anything): a
// read that fails on its deadline cannot be resumed, and the reader must
// still be able to read the client's answer (drainAfterClose).
func (w *wsSink) interrupt() { _ = w.conn.SetReadDeadline(time.Now().Add(CloseDrainTimeout)) }
func (w *wsSink) abort()     { _ = w.conn.SetDeadline(time.Now()) }

func (w *wsSink) encode(f *frame) []byte { return f.wire }
func (w *wsSink) ping() []byte           { return wsPingMessage }
func (w *wsSink) pong() []byte           { return wsPongMessage }
func (w *wsSink) closing(code int, reason string) []byte {
	return wsCloseMessage(code, reason)
}

func (w *wsSink) tryWrite(b []byte) (int, error) {
	if w.raw == nil {
		return 0, nil
	}
	return tryWriteRaw(w.raw, b)
}

func (w *wsSink) write(b []byte, deadline time.Time) error {
	_ = w.conn.SetWriteDeadline(deadline)
	_, err := w.conn.Write(b)
	return err
}

// sse serves GET /v1/live/sse?site=ID&views=a,b with the same frames as
// Server-Sent Events, for API-key clients and curl.
func (h *Hub) sse(c *fiber.Ctx) error {
	tok := ""
	if a := c.Get(fiber.HeaderAuthorization); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		tok = strings.TrimSpace(a[7:])
	}
	if tok == "" || len(tok) > auth.MaxTokenLength {
		return fail(c, fiber.StatusUnauthorized, "send Authorization: Bearer <read API key, session or share-link token>")
	}
	siteID, err := uuid.Parse(c.Query("site"))
	if err != nil {
		return fail(c, fiber.StatusBadRequest, "site must be a site id")
	}
	var names []string
	if v := c.Query("views"); v != "" {
		names = strings.Split(v, ",")
	}
	views, err := ParseViews(names)
	if err != nil {
		return fail(c, fiber.StatusBadRequest, err.Error())
	}
	// The subscriber keeps its credential to re-check it, possibly after
	// fasthttp has reused the request's buffers for another connection (a
	// client that left is noticed later): a copy, not Fiber's string.
	sub, code, reason := h.admit(credential{raw: strings.Clone(tok)}, siteID, views)
	switch {
	case sub != nil:
	case code == CloseAuthFailed:
		return fail(c, fiber.StatusUnauthorized, reason)
	case code == CloseForbidden:
		return fail(c, fiber.StatusNotFound, reason)
	default:
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(quotaRetryAfter))
		return fail(c, fiber.StatusTooManyRequests, reason)
	}
	conn := c.Context().Conn()
	out := &sseSink{conn: conn}
	sub.out = out
	sub.wake = make(chan struct{}, 1) // this stream's goroutine is its only writer
	if sc, ok := conn.(syscall.Conn); ok {
		// Nothing reads an SSE request's connection while the stream runs:
		// the housekeeper peeks at it to notice a client that left.
		sub.peer, _ = sc.SyscallConn()
	}
	if !h.track(sub) {
		h.release(sub)
		c.Set(fiber.HeaderRetryAfter, "2")
		return fail(c, fiber.StatusServiceUnavailable, "the server is shutting down; retry later")
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	h.subscribe(sub) // whoever holds the output, this stream's goroutine writes
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.untrack(sub)
		defer h.release(sub)
		defer h.unsubscribe(sub)
		out.w = w
		for !sub.drain() {
			<-sub.wake
		}
		sub.wait()
	})
	return nil
}

// sseSink writes frames as Server-Sent Events. Its writes go through
// fasthttp's body stream; the deadline is set on the connection, where
// fasthttp writes them.
type sseSink struct {
	w    *bufio.Writer
	conn net.Conn
}

var ssePing = []byte(": ping\n\n")

func (s *sseSink) encode(f *frame) []byte       { return f.sse() }
func (s *sseSink) ping() []byte                 { return ssePing }
func (s *sseSink) pong() []byte                 { return nil }
func (s *sseSink) tryWrite([]byte) (int, error) { return 0, nil }
func (s *sseSink) interrupt()                   {}
func (s *sseSink) abort() {
	if s.conn != nil {
		_ = s.conn.SetDeadline(time.Now())
	}
}

func (s *sseSink) closing(code int, reason string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "close", "code": code, "reason": reason})
	return fmt.Appendf(nil, "event: close\ndata: %s\n\n", b)
}

func (s *sseSink) write(b []byte, deadline time.Time) error {
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(deadline)
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.w.Flush()
}
