// Package stream keeps per-site live aggregates in memory and pushes them to
// dashboards: a snapshot when a subscriber subscribes, then a delta every
// tick in which something changed, over WS /v1/live and GET /v1/live/sse.
//
// Ingest feeds a Hub with Publish (accepted events, before the ClickHouse
// commit) and with Connected, Heartbeat and Disconnected (tracker
// connections, for "online now"). Both go through a Bus; the default is in
// process, and the aggregates are sums and HyperLogLog sketches so that a
// multi-node bus can merge them. Slow subscribers never slow the ingest path
// or other subscribers: each has a bounded queue that is coalesced into one
// catch-up frame when it fills, and a subscriber whose writes block for
// StallTimeout is closed. docs/protocol.md ("Live stream") describes the wire protocol, the close
// codes and the memory bounds.
package stream
