package dashboard

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
)

// A visitor whose visits in the range came from different sources counts
// under the source of their first event in the range, on every run: not
// under whichever row ClickHouse's any() met first (the events are stored
// by id, and the later visit's ids come first here).
func TestFunnelBreakdownTakesTheVisitorsFirstValue(t *testing.T) {
	f := newQueryFixture(t)
	id := func(n byte) uuid.UUID { var u uuid.UUID; u[15] = n; return u }
	late := id(1) // the second visit's pageview, stored before the first visit's rows
	insertEvents(t, f.db, f.a.Site,
		qEvent{id: id(0xf0), at: "2026-10-20 08:00", typ: "page", page: "/", visitor: 50, session: 501, source: "Alpha", channel: "Referral", country: "DE", device: "Desktop"},
		qEvent{id: id(0xf1), at: "2026-10-20 08:05", typ: "page", page: "/pricing", visitor: 50, session: 501, source: "(direct)", channel: "Direct", country: "DE", device: "Desktop"},
		qEvent{id: late, at: "2026-10-20 14:00", typ: "page", page: "/", visitor: 50, session: 502, source: "Beta", channel: "Referral", country: "DE", device: "Desktop"},
	)
	status, body := f.post(t, "/api/v1/funnel", f.keyA, map[string]any{"site_id": f.a.Site.ID, "date_range": []string{"2026-10-20", "2026-10-20"},
		"steps": []any{map[string]string{"page": "/"}, map[string]string{"page": "/pricing"}}, "breakdown": "visit:source"})
	if status != 200 {
		t.Fatalf("funnel: %d %v", status, body)
	}
	var fr FunnelResult
	remarshal(t, body, &fr)
	got := ""
	for _, b := range fr.Breakdown {
		got += fmt.Sprintf("%s %d/%d; ", b.Value, b.Steps[0].Visitors, b.Steps[1].Visitors)
	}
	if want := "Alpha 1/1; "; got != want {
		t.Fatalf("funnel breakdown by source = %q, want %q (the source of the visitor's first visit in the range)", got, want)
	}
}
