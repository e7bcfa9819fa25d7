package ingest

import "time"

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
	// MaxConnectionsPerAddress bounds one client address's open
	// connections (see DefaultMaxConnectionsPerAddress).
	MaxConnectionsPerAddress int
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
	if c.MaxConnectionsPerAddress <= 0 {
		c.MaxConnectionsPerAddress = DefaultMaxConnectionsPerAddress
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
