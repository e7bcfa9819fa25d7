package ingest

import "time"

// Limits on what one HTTP request or one event may carry. Events over a limit
// are rejected with an error naming the field, except where a comment says the
// value is truncated instead. docs/protocol.md lists the same numbers.
const (
	// MaxRequestBytes bounds the body of POST /v1/events (413 above it).
	MaxRequestBytes = 512 << 10
	// MaxEventsPerRequest bounds the events in one POST /v1/events body.
	MaxEventsPerRequest = 500
	// MaxNameBytes bounds an event name.
	MaxNameBytes = 200
	// MaxURLBytes bounds the page URL and the referrer.
	MaxURLBytes = 2048
	// MaxTitleBytes bounds the page title; longer titles are truncated.
	MaxTitleBytes = 512
	// MaxProps bounds the number of properties of one event.
	MaxProps = 30
	// MaxPropKeyBytes bounds a property name.
	MaxPropKeyBytes = 64
	// MaxPropValueBytes bounds a property value; longer values are truncated.
	MaxPropValueBytes = 512
	// MaxClockSkew is how far in the future an event's timestamp may be; a later
	// timestamp is replaced by the time the server received the event.
	MaxClockSkew = 5 * time.Minute
	// MaxEventAge is how old an event's timestamp may be; older events are rejected.
	MaxEventAge = 7 * 24 * time.Hour
	// MaxEnqueueWait is how long an HTTP request waits for room in the batcher
	// before it is answered 503 with Retry-After.
	MaxEnqueueWait = 5 * time.Second
	// RetryAfterBusy is the Retry-After given when the batcher is full.
	RetryAfterBusy = 2 * time.Second
)

// Limits of the HTTP formats other tools speak (docs/ingest-formats.md), as
// those tools document them. Beyond them a request or event is refused with
// an error the tool's client reports; nothing is truncated.
const (
	// MaxSegmentBatchBytes is Segment's limit on one request body (a
	// /v1/batch of messages, or one message at /v1/track and the others).
	MaxSegmentBatchBytes = 500 << 10
	// MaxSegmentMessageBytes is Segment's limit on one message. Segment sets
	// no limit on the number or size of properties beyond it.
	MaxSegmentMessageBytes = 32 << 10
	// MaxPlausibleProps, MaxPlausiblePropKeyBytes and MaxPlausiblePropValueBytes
	// are Plausible's limits on custom properties: 30 of them, names up to
	// 300 bytes, values up to 2,000 bytes.
	MaxPlausibleProps          = 30
	MaxPlausiblePropKeyBytes   = 300
	MaxPlausiblePropValueBytes = 2000
	// MaxPlausibleBytes bounds one Plausible event body: room for
	// MaxPlausibleProps properties of the largest size, the URL and the
	// referrer, with JSON's escapes.
	MaxPlausibleBytes = 256 << 10
	// MaxPlausibleEngagementMs is Plausible's bound on an engagement event's
	// engaged time (e): 30 days; a larger value is refused.
	MaxPlausibleEngagementMs = 30 * 24 * 60 * 60 * 1000
)

// Batcher defaults (see BatcherConfig).
const (
	// DefaultBatchRows: at 10,000 rows per insert ClickHouse spent about as
	// much CPU merging the small parts as inserting them; at 50,000 its CPU per
	// event halved with no loss of throughput (docs/benchmarks.md). The
	// batcher holds two blocks at most: about 40 MB each of tracker events.
	DefaultBatchRows         = 50_000
	DefaultBatchBytes        = 64 << 20
	DefaultFlushInterval     = time.Second
	DefaultRetryMin          = 100 * time.Millisecond
	DefaultRetryMax          = 5 * time.Second
	DefaultInsertTimeout     = 30 * time.Second
	DefaultFinalFlushTimeout = 10 * time.Second
)

// Limits and timings of the WebSocket protocol (docs/protocol.md, "WebSocket
// /v1/ingest"). Config fields left zero take these values.
const (
	// ProtocolVersion is the only version of the ingest protocol.
	ProtocolVersion = 1
	// MaxFrameBytes bounds one WebSocket message; a larger one is answered
	// with close 1009 by the WebSocket layer (SetReadLimit).
	MaxFrameBytes = 64 << 10
	// MaxEventsPerFrame bounds the events of one events frame; a frame with
	// more is refused as a whole (error bad_frame).
	MaxEventsPerFrame = 500
	// MaxEventBytes bounds one event's JSON; a larger event is rejected.
	MaxEventBytes = 8 << 10
	// MaxSDKFieldBytes bounds hello's sdk and sdk_version (longer is truncated).
	MaxSDKFieldBytes = 64
	// DefaultFramesPerSecond and DefaultFrameBurst are the token bucket of
	// frames per connection. A client over it is paced, not refused: its
	// next frame is read once a token has come, so TCP slows it down (a
	// tracker's resend burst after a stall goes through at this rate).
	DefaultFramesPerSecond = 50
	DefaultFrameBurst      = 100
	// DefaultPacedFrames is how many frames in a row a connection may be
	// paced before it is closed with CloseRateLimited: a client that keeps
	// sending over the rate, counted from the last time its bucket was full
	// (it had kept under the rate for FrameBurst/FramesPerSecond, 2 s). At
	// 50 frames per second that is a minute over the rate. A tracker resending
	// its whole queue (at most 1,000 events, at worst one a frame) is paced
	// for 900 frames at most.
	DefaultPacedFrames = 3000
	// DefaultMaxConnectionsPerAddress bounds the tracker connections one
	// client address (an IPv6 address by its /64, the block one subscriber
	// holds) may have open on a node, over all sites: anyone may open them
	// with a public site key, and one source must not take a tenant's whole
	// MaxConnections. Beyond it a connection is closed with 4429
	// (ReasonAddressConnections) and the tracker sends over HTTP meanwhile.
	// 256 leaves room for an office or a carrier NAT of many visitors with
	// a tab or two each.
	DefaultMaxConnectionsPerAddress = 256
	// DefaultAddressRetryAfter is the retry_after of that 4429.
	DefaultAddressRetryAfter = 30 * time.Second
	// DefaultHelloTimeout is how long a new connection may take to send hello.
	DefaultHelloTimeout = 10 * time.Second
	// DefaultPingInterval is how often the server sends a WebSocket ping.
	DefaultPingInterval = 20 * time.Second
	// DefaultReadTimeout is how long a connection may stay silent (no frame,
	// no pong) before it counts as dead: the ping interval plus 10 s.
	DefaultReadTimeout = DefaultPingInterval + 10*time.Second
	// DefaultWriteTimeout bounds one write to a client.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultBusyAfter is how long a frame waits for room in the batcher
	// before the client is told busy.
	DefaultBusyAfter = 100 * time.Millisecond
	// DefaultBusyRetryAfter is the retry_after_ms of a busy frame.
	DefaultBusyRetryAfter = 2 * time.Second
	// DefaultDedupEntries is how many recently accepted event ids (over all
	// sites) a node remembers to suppress resends.
	DefaultDedupEntries = 200_000
	// DefaultMaxSessions is how many resumable sessions a node remembers.
	DefaultMaxSessions = 100_000
	// DefaultSessionLifetime is how long a session's last acknowledged
	// sequence is remembered after its last use (the resume token's lifetime).
	DefaultSessionLifetime = 30 * time.Minute
	// DefaultShutdownGrace bounds how long Shutdown waits for connections to end.
	DefaultShutdownGrace = 5 * time.Second
	// CloseDrainTimeout is how long the server keeps reading (and discarding)
	// what a client sends after the server's close frame, waiting for the
	// client's close answer, before it closes the socket: closing with the
	// client's frames unread resets the connection, and the client then sees
	// 1006 instead of the close code.
	CloseDrainTimeout = time.Second
)

// WebSocket close codes of the ingest protocol (docs/protocol.md, "Close codes").
const (
	// CloseGoingAway: the server is shutting down; reconnect and resume.
	CloseGoingAway = 4000
	// CloseAuthFailed: hello's identity token is invalid or expired.
	CloseAuthFailed = 4001
	// CloseProtocolError: a frame that breaks the protocol (not JSON, unknown
	// type, events before hello, seq not growing, binary frame).
	CloseProtocolError = 4002
	// CloseUnsupportedVersion: hello.v is not ProtocolVersion.
	CloseUnsupportedVersion = 4003
	// CloseHelloTimeout: no hello within the hello timeout.
	CloseHelloTimeout = 4008
	// CloseDeadPeer: nothing received within the read timeout.
	CloseDeadPeer = 4010
	// CloseInternalError: the server failed (e.g. could not sign a resume token).
	CloseInternalError = 4011
	// CloseRateLimited: the connection stayed over its frame rate for more
	// than PacedFrames frames in a row, although it was paced.
	CloseRateLimited = 4029
	// CloseQuotaExceeded: a tenant quota (connections, events per second or
	// month); the reason is "<quota> retry_after=S". Same as auth.CloseQuotaExceeded.
	CloseQuotaExceeded = 4429
)
