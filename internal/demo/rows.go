package demo

import (
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/ingest"
)

// owner is the tenant and site history rows belong to.
type owner struct {
	tenant, site uuid.UUID
}

// rows appends the events of v that happen before until as the rows ingest
// would store for them: the same URL split, referrers and UTM fields,
// enrichment's own user agent parsing and source classification. A pageview
// after the first carries the previous page as its referrer and custom events
// (engagement events too) carry none, as the tracker sends them (so only the
// landing page's events have the visit's source; see docs/privacy.md). Event
// ids derive from v.key.
func (g *generator) rows(o owner, v *visit, until time.Time, out []ingest.Event) []ingest.Event {
	s := g.site
	src := &s.sources[v.source]
	ag := &s.agents[v.agent].parsed
	pl := &s.places[v.place]
	landing := true // still on the landing page, whose URL has the campaign query
	prev := ""
	for i := range v.steps {
		st := &v.steps[i]
		at := v.start.Add(st.at)
		if !at.Before(until) {
			break
		}
		pg := &s.pages[st.page]
		if st.action == pageview && i > 0 {
			landing = false
		}
		h := mix(v.key, uint64(i), 4)
		e := ingest.Event{
			TenantID: o.tenant, SiteID: o.site, ID: eventID(v.key, uint64(i)),
			Time:       at,
			ReceivedAt: at.Add(time.Duration(h%1500) * time.Millisecond).Truncate(time.Second),
			Hostname:   s.host, Pathname: pg.path,
			VisitorID: v.visitor, SessionID: v.session,
			Device: ag.Device, Browser: ag.Browser, BrowserVersion: ag.BrowserVersion, OS: ag.OS, OSVersion: ag.OSVersion,
			IsBot:   ag.Bot,
			Country: pl.Country, Region: pl.Region, City: pl.City,
		}
		if i >= v.userFrom {
			e.UserID = v.user
		}
		cls := s.direct
		if landing {
			e.Query = v.rawQuery
			utm := &src.utm[v.query]
			e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMTerm, e.UTMContent = utm[0], utm[1], utm[2], utm[3], utm[4]
		}
		switch st.action {
		case pageview:
			e.Type, e.Name, e.Title = "page", "pageview", pg.title
			if i == 0 {
				e.Referrer, e.ReferrerHost = s.referrer(v)
				cls = src.landing[v.ref][v.query]
			} else {
				e.Referrer, e.ReferrerHost = prev, s.host
			}
			prev = pg.url
			if landing && v.rawQuery != "" {
				prev = pg.url + "?" + v.rawQuery
			}
		case engagement:
			e.Type, e.Name, e.PropKeys, e.PropValues = "track", engagementName, engagementKeys, st.values
			if landing {
				cls = src.landingTrack[v.query]
			}
		default:
			a := &pg.actions[st.action]
			e.Type, e.Name = "track", a.name
			if len(a.keys) > 0 {
				e.PropKeys, e.PropValues = a.keys, st.values
			}
			if landing {
				cls = src.landingTrack[v.query]
			}
		}
		e.Source, e.Medium, e.Channel = cls.Name, cls.Medium, cls.Channel
		out = append(out, e)
	}
	return out
}

// hostOf returns the host of a referrer URL ("" for none).
func hostOf(ref string) string {
	u, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// eventID is the id of a visit's i-th event: a version 4 UUID whose bits come
// from the visit's key, so the same seed gives the same ids.
func eventID(key, i uint64) uuid.UUID {
	var id uuid.UUID
	a, b := mix(key, i, 5), mix(key, i, 6)
	for j := range 8 {
		id[j], id[8+j] = byte(a>>(8*j)), byte(b>>(8*j))
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}
