package ingest

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"
)

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
	if d := s.tenancy.AllowEvents(org, c.client.quotaAddr(), n); !d.Allowed {
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
