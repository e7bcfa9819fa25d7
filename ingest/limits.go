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

// Batcher defaults (see BatcherConfig).
const (
	DefaultBatchRows         = 10_000
	DefaultFlushInterval     = time.Second
	DefaultRetryMin          = 100 * time.Millisecond
	DefaultRetryMax          = 5 * time.Second
	DefaultInsertTimeout     = 30 * time.Second
	DefaultFinalFlushTimeout = 10 * time.Second
)
