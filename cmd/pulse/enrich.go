package main

import (
	"net/url"

	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/ingest/enrich"
)

// enricher fills an ingest event's derived fields from ingest/enrich: device
// and software, place, anonymous visitor and session ids, source and channel.
// The client's IP address is used here and not kept.
type enricher struct{ e *enrich.Enricher }

func (a enricher) Enrich(ev *ingest.Event, c ingest.Client) {
	var cl enrich.Client
	switch {
	case c.ServerSide && !c.IP.IsValid():
		cl = a.e.ServerClient(ev.SiteID, c.VisitorKey, c.UserAgent, ev.ReceivedAt)
	case c.ServerSide && c.UserAgent == "":
		cl = a.e.Client(ev.SiteID, c.IP, c.UserAgent, ev.ReceivedAt)
		cl.Agent = enrich.Agent{} // no user agent given: unknown, not a bot
	default:
		cl = a.e.Client(ev.SiteID, c.IP, c.UserAgent, ev.ReceivedAt)
	}
	ev.Browser, ev.BrowserVersion, ev.OS, ev.OSVersion = cl.Browser, cl.BrowserVersion, cl.OS, cl.OSVersion
	ev.Device, ev.IsBot = cl.Device, cl.Bot
	ev.Country, ev.Region, ev.City = cl.Country, cl.Region, cl.City
	ev.VisitorID = cl.VisitorID
	if cl.VisitorID != 0 {
		ev.SessionID = a.e.Session(ev.SiteID, cl.VisitorID, ev.Time)
	}
	query, _ := url.ParseQuery(ev.Query)
	src := enrich.ClassifySource(query, ev.Referrer, ev.Hostname)
	ev.Source, ev.Medium, ev.Channel = src.Name, src.Medium, src.Channel
}
