// Named limits and delays of the tracker. This module imports nothing, so that esbuild
// inlines the numbers where they are used.

export const VERSION = '1.0.0'
/** Events wait FRAME_DELAY ms to share a frame: at most 40 frames/s, under the server's 50/s. */
export const FRAME_DELAY = 25
/**
 * At most MAX_IN_FLIGHT frames wait for their ack on a connection; later events wait in the
 * queue and go together in fuller frames once an ack comes. Well under the server's burst of
 * 100 frames (ingest/limits.go DefaultFrameBurst), so that even a resend of every frame in
 * flight at once would not be closed with 4029; 10 full frames hold 1000 events, the
 * queue's whole MAX_EVENTS.
 */
export const MAX_IN_FLIGHT = 10
/** A frame, POST body or beacon holds at most CHUNK_EVENTS events and about CHUNK_BYTES bytes of UTF-8 (server: 500 and 64 KiB; keepalive and sendBeacon: 64 KiB). */
export const CHUNK_EVENTS = 100
export const CHUNK_BYTES = 6e4
/** The server refuses an event whose JSON is over EVENT_BYTES bytes; the tracker drops such an event with a console line instead, since one over a whole frame would otherwise be sent, refused (close 1009) and sent again forever, holding every later event behind it. */
export const EVENT_BYTES = 8192
/** Without a welcome within CONNECT_TIMEOUT ms of connecting, the attempt has failed. */
export const CONNECT_TIMEOUT = 5000
/** A ping is sent every PING_EVERY ms; without any frame PONG_WAIT ms after it the connection is dead. */
export const PING_EVERY = 15000
export const PONG_WAIT = 10000
/** After FALLBACK_AFTER failed connection attempts in a row, events go by POST /v1/events while the attempts go on. */
export const FALLBACK_AFTER = 2
/** Reconnect delays grow from BACKOFF_BASE ms, doubling up to BACKOFF_MAX ms. */
export const BACKOFF_BASE = 500
export const BACKOFF_MAX = 30000

/** The queue keeps at most MAX_EVENTS events and MAX_BYTES bytes of JSON; beyond, the oldest are dropped and counted. */
export const MAX_EVENTS = 1000
export const MAX_BYTES = 262144
/** An event older than MAX_AGE ms (2 days) leaves the queue unsent; the server refuses events older than 7 days. */
export const MAX_AGE = 1728e5
/** Full build: a stored event another live page has not got acknowledged within ORPHAN ms is adopted by this page too. */
export const ORPHAN = 3e4

/** OPT_OUT is the localStorage key whose value "1" makes the tracker decline on this origin. */
export const OPT_OUT = 'pulse_optout'
