package main

import (
	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/ingest/enrich"
)

// enricher fills an ingest event's derived fields from ingest/enrich: device
// and software, place, anonymous visitor and session ids, source and channel.
// The client's IP address is used here and not kept.
type enricher struct{ e *enrich.Enricher }

// Enrich derives what the client says of its visitor once for events that
// share their site and received time (a frame's events all do), then each
// event's session and source.
func (a enricher) Enrich(events []ingest.Event, c ingest.Client) {
	var (
		cl   enrich.Client
		from *ingest.Event // the event cl was derived for
	)
	for i := range events {
		ev := &events[i]
		if from == nil || ev.SiteID != from.SiteID || !ev.ReceivedAt.Equal(from.ReceivedAt) {
			cl, from = a.client(ev, c), ev
		}
		ev.Browser, ev.BrowserVersion, ev.OS, ev.OSVersion = cl.Browser, cl.BrowserVersion, cl.OS, cl.OSVersion
		ev.Device, ev.IsBot = cl.Device, cl.Bot
		ev.Country, ev.Region, ev.City = cl.Country, cl.Region, cl.City
		ev.VisitorID = cl.VisitorID
		if cl.VisitorID != 0 {
			ev.SessionID = a.e.Session(ev.SiteID, cl.VisitorID, ev.Time)
		}
		// The event's UTM fields are the page query's first values already;
		// the referrer's host name is that of the referrer URL.
		campaign := enrich.Campaign{Source: ev.UTMSource, Medium: ev.UTMMedium, Name: ev.UTMCampaign, ClickID: enrich.QueryClickID(ev.Query)}
		src := enrich.ClassifyCampaign(campaign, ev.ReferrerHost, ev.Hostname)
		ev.Source, ev.Medium, ev.Channel = src.Name, src.Medium, src.Channel
	}
}

// client derives the visitor's software, place and id for ev.
func (a enricher) client(ev *ingest.Event, c ingest.Client) enrich.Client {
	switch {
	case c.ServerSide && !c.IP.IsValid():
		return a.e.ServerClient(ev.SiteID, c.VisitorKey, c.UserAgent, ev.ReceivedAt)
	case c.ServerSide && c.UserAgent == "":
		cl := a.e.Client(ev.SiteID, c.IP, c.UserAgent, ev.ReceivedAt)
		cl.Agent = enrich.Agent{} // no user agent given: unknown, not a bot
		return cl
	default:
		return a.e.Client(ev.SiteID, c.IP, c.UserAgent, ev.ReceivedAt)
	}
}
