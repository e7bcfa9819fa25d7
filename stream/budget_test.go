package stream

import (
	"context"
	"testing"

	"github.com/pulse-analytics/pulse/auth"
)

// TestIngestConnectionsDoNotStarveTheLiveView: a tenant whose ingest
// connections are all taken (anyone with the public site key can open them)
// still watches its live view and SSE: live subscribers have their own budget.
func TestIngestConnectionsDoNotStarveTheLiveView(t *testing.T) {
	e := newLiveEnv(t, Config{})
	a := newTenant(t, e.store, "starved")
	if _, err := e.store.SetQuota(context.Background(), a.org.ID, auth.Quota{MaxConnections: 2}); err != nil {
		t.Fatal(err)
	}
	// The ingest side's connections, as ingest takes them.
	for range 2 {
		release, d := e.store.AcquireConnection(a.org.ID)
		if !d.Allowed {
			t.Fatalf("ingest connection refused before the quota: %+v", d)
		}
		t.Cleanup(release)
	}
	if _, d := e.store.AcquireConnection(a.org.ID); d.Allowed {
		t.Fatal("the tenant's ingest connections are not full: the test proves nothing")
	}
	for i := range 3 {
		ws, _, err := e.dial(t, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, code := e.subscribe(t, ws, a.readKey, a.site.ID, "online"); code != 0 {
			t.Fatalf("live subscriber %d closed with %d while the ingest connections are full; want a snapshot", i+1, code)
		}
	}
}
