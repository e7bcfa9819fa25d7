package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/pulse-analytics/pulse/auth"
)

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
	// addrs counts the open connections per client address.
	addrs *addrConns
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

// NewServer returns the WebSocket endpoint. Events go to b; sites, quotas and
// tokens come from t (an *auth.Store).
func NewServer(cfg Config, t Tenancy, b *Batcher, log *slog.Logger, m *Metrics) *Server {
	cfg.withDefaults()
	s := &Server{cfg: cfg, tenancy: t, batcher: b, log: log, m: m,
		dedup: newDedup(cfg.DedupEntries), sessions: newSessions(cfg.MaxSessions, cfg.SessionLifetime),
		now: time.Now, conns: make(map[*wsConn]struct{}), hooks: cfg.hooks(m), addrs: newAddrConns(cfg.MaxConnectionsPerAddress)}
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
