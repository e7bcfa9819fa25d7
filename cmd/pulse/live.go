package main

import (
	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/stream"
)

// livePublisher hands accepted events to the live hub in the hub's own event
// type (ingest imports stream's API only through this adapter). Bots are left
// out of the live view, as they are of visitor counts.
type livePublisher struct{ hub *stream.Hub }

func (l livePublisher) Publish(site ingest.Site, conn uint64, events []ingest.Event) {
	out := make([]stream.Event, 0, len(events))
	for i := range events {
		e := &events[i]
		if e.IsBot {
			continue
		}
		out = append(out, stream.Event{
			ID: e.ID, Type: e.Type, Name: e.Name, Pathname: e.Pathname,
			Source: e.Source, Channel: e.Channel, Country: e.Country, Browser: e.Browser, Device: e.Device,
			VisitorID: e.VisitorID, SessionID: e.SessionID, Conn: conn,
		})
	}
	if len(out) > 0 {
		l.hub.Publish(site.ID, out)
	}
}
