package stream

import (
	"log/slog"
	"time"
)

// Config configures a Hub. cmd/pulse fills it from flags and environment;
// fields left zero take the Default* values of limits.go.
type Config struct {
	// Tick is how often changed live state is pushed to subscribers.
	Tick time.Duration
	// PresenceTimeout is how long a tracker connection counts as online after
	// its last sign of life when no Disconnected is reported.
	PresenceTimeout time.Duration
	// HTTPPresence is how long a visitor seen only over HTTP counts as online.
	HTTPPresence time.Duration
	// QueueFrames and QueueBytes bound one subscriber's send queue.
	QueueFrames int
	QueueBytes  int
	// History is how many published states per site are kept for coalesced
	// catch-up deltas.
	History int
	// StallTimeout is how long one write may block before the subscriber is
	// closed with CloseStalled.
	StallTimeout time.Duration
	// AuthTimeout bounds the time from upgrade to subscribe.
	AuthTimeout time.Duration
	// PingInterval is how often a socket is pinged and its access re-checked.
	PingInterval time.Duration
	// ReadTimeout is how long a socket may stay silent before it is dead.
	ReadTimeout time.Duration
	// MaxSubscribersPerTenant bounds one tenant's live subscribers on this
	// node (besides auth's connection quota, which live sockets also take).
	MaxSubscribersPerTenant int
	// IdleSiteTTL is how long an unwatched site without events keeps its state.
	IdleSiteTTL time.Duration
	// ShutdownGrace bounds Shutdown when its context has no deadline.
	ShutdownGrace time.Duration
	// SessionCookie is the dashboard session cookie's name (auth's
	// Config.SessionCookie). Default auth.DefaultSessionCookie.
	SessionCookie string
	// Bus carries events between nodes. Default: an in-process bus (one node).
	Bus Bus
	// Goals names each site's goals. Default: every custom event name is a
	// goal, first come, up to MaxGoals per site.
	Goals goalSource
	// Logger receives connection failures. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Tick, DefaultTick)
	def(&c.PresenceTimeout, DefaultPresenceTimeout)
	def(&c.HTTPPresence, DefaultHTTPPresence)
	def(&c.StallTimeout, DefaultStallTimeout)
	def(&c.AuthTimeout, DefaultAuthTimeout)
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.ReadTimeout, c.PingInterval+10*time.Second)
	def(&c.IdleSiteTTL, DefaultIdleSiteTTL)
	def(&c.ShutdownGrace, DefaultShutdownGrace)
	if c.QueueFrames <= 0 {
		c.QueueFrames = DefaultQueueFrames
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	if c.MaxSubscribersPerTenant <= 0 {
		c.MaxSubscribersPerTenant = DefaultMaxSubscribersPerTenant
	}
	if c.Bus == nil {
		c.Bus = NewInProcBus()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
