package stream

import "time"

// Defaults of Config. Config fields left zero take these values; docs/protocol.md (live stream)
// lists the same numbers.
const (
	// DefaultTick is how often changed live state is pushed to subscribers.
	DefaultTick = 250 * time.Millisecond
	// DefaultPresenceTimeout is how long a tracker connection counts as online
	// after its last sign of life (connect, event or heartbeat). Ingest's dead
	// peer detection closes a silent connection after 30 s; this is the bound
	// when a close is never reported.
	DefaultPresenceTimeout = 45 * time.Second
	// DefaultHTTPPresence is how long a visitor seen over HTTP (POST
	// /v1/events, no open connection) counts as online.
	DefaultHTTPPresence = 5 * time.Minute
	// DefaultQueueFrames and DefaultQueueBytes bound one subscriber's send
	// queue; beyond either, pending deltas are coalesced into one catch-up
	// frame.
	DefaultQueueFrames = 16
	DefaultQueueBytes  = 256 << 10
	// DefaultHistory is how many published states per site are kept to build
	// a coalesced catch-up delta; a subscriber further behind gets a snapshot
	// with a missed count.
	DefaultHistory = 8
	// DefaultStallTimeout is how long one write to a subscriber may block
	// before the subscriber is closed as stalled (CloseStalled).
	DefaultStallTimeout = 10 * time.Second
	// DefaultAuthTimeout is how long a new live socket may take to send
	// auth (when it has no session cookie) and subscribe.
	DefaultAuthTimeout = 10 * time.Second
	// DefaultPingInterval is how often the server pings a live socket and
	// re-checks the subscriber's access (revoked key, removed member).
	DefaultPingInterval = 20 * time.Second
	// DefaultReadTimeout is how long a live socket may stay silent (no
	// frame, no pong) before it is closed as dead.
	DefaultReadTimeout = DefaultPingInterval + 10*time.Second
	// DefaultMaxSubscribersPerTenant bounds one tenant's live sockets and SSE
	// streams on one node, on top of auth's shared connection quota.
	DefaultMaxSubscribersPerTenant = 1_000
	// DefaultIdleSiteTTL is how long a site without events and without
	// subscribers keeps its live state before it is freed.
	DefaultIdleSiteTTL = time.Hour
	// DefaultShutdownGrace bounds Shutdown when its context has no deadline.
	DefaultShutdownGrace = 5 * time.Second
	// CloseDrainTimeout is how long a live socket keeps reading (and
	// discarding) what the client sends after the server's close frame,
	// waiting for the client's close answer, before the socket closes:
	// closed with the client's frames unread, it would be reset, and the
	// client would see 1006 instead of the close code.
	CloseDrainTimeout = time.Second
)

// Bounds of one site's live state (docs/protocol.md, live stream, "Memory").
const (
	// TopN is the length of every top list.
	TopN = 10
	// MaxKeysPerDimension bounds the distinct values a dimension (pages,
	// sources…) tracks over 30 minutes; further values count as OtherKey.
	MaxKeysPerDimension = 500
	// MaxKeyBytes truncates a dimension value (a long path).
	MaxKeyBytes = 256
	// OtherKey collects the values beyond MaxKeysPerDimension.
	OtherKey = "(other)"
	// MaxGoals bounds the goals tracked per site.
	MaxGoals = 20
	// FeedSize is the number of recent events the live feed holds.
	FeedSize = 50
	// FeedPerSecond is the most events per second that enter the feed; when a
	// site is busier, every k-th event is taken (k = last second's events /
	// FeedPerSecond).
	FeedPerSecond = 20
	// MaxRecentIDs is how many recent event ids per site are remembered to
	// suppress resent events.
	MaxRecentIDs = 32_768
	// MaxConnsPerSite and MaxHTTPVisitorsPerSite bound the presence tables;
	// when full, new entries are not tracked (online-now saturates).
	MaxConnsPerSite        = 100_000
	MaxHTTPVisitorsPerSite = 100_000
	// MaxSessionsPerSite bounds the sessions remembered for entry pages.
	MaxSessionsPerSite = 100_000
	// SecondsWindow and MinutesWindow are the lengths of the rate series.
	SecondsWindow = 300
	MinutesWindow = 60
	// TopWindowMinutes is the longest window of the top lists and unique
	// visitors; ShortWindowMinutes the short one.
	TopWindowMinutes   = 30
	ShortWindowMinutes = 5
	// HLLPrecision is the precision of the unique-visitor sketches (2^14
	// registers, about 0.8 % standard error).
	HLLPrecision = 14
	// SocketSendBuffer is the kernel send buffer of a live socket (SO_SNDBUF):
	// small, so that a slow reader's backlog stays in the send queue, where
	// it is coalesced, instead of piling up as stale frames in the kernel.
	SocketSendBuffer = 32 << 10
	// MaxFrameBytes bounds a frame a client sends (auth, subscribe, ping).
	MaxFrameBytes = 4 << 10
)

// Close codes of WS /v1/live (docs/protocol.md, live stream, "Close codes").
const (
	// CloseGoingAway: the server is shutting down.
	CloseGoingAway = 4000
	// CloseAuthFailed: no valid credential (cookie or auth frame).
	CloseAuthFailed = 4001
	// CloseProtocolError: a frame that is not what the protocol allows here.
	CloseProtocolError = 4002
	// CloseForbidden: the site is unknown or not visible to the credential.
	CloseForbidden = 4003
	// CloseTokenExpired: the session or share-link token expired on the open socket.
	CloseTokenExpired = 4006
	// CloseAccessRevoked: a periodic re-check found the credential revoked
	// or the site no longer visible.
	CloseAccessRevoked = 4007
	// CloseAuthTimeout: no auth or subscribe within AuthTimeout.
	CloseAuthTimeout = 4008
	// CloseDeadPeer: nothing received within ReadTimeout.
	CloseDeadPeer = 4010
	// CloseInternalError: a bug.
	CloseInternalError = 4011
	// CloseStalled: a write blocked longer than StallTimeout (the client
	// stopped reading).
	CloseStalled = 4013
	// CloseQuotaExceeded: the tenant's live or connection quota; the reason
	// is "<quota> retry_after=S" (auth.CloseQuotaExceeded).
	CloseQuotaExceeded = 4429
)

// ReasonLiveSubscribers names the live subscriber quota in a 4429 reason.
const ReasonLiveSubscribers = "live_subscribers"
