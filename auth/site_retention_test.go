package auth

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestSiteRetentionThroughTheAPI(t *testing.T) {
	s := openStore(t, chtest.Open(t), testConfig(t))
	w := newTenantWorld(t, s)
	app := apiApp(s)
	site := "/api/v1/sites/" + w.a.site.ID.String()

	tests := []struct {
		name    string
		bearer  string
		body    string
		status  int
		want    float64 // retention_days in the answer when status is 200
		errText string  // part of the error when status is not 200
	}{
		{"admin sets 30 days", w.admnA, `{"retention_days": 30}`, 200, 30, ""},
		{"other fields leave it alone", w.admnA, `{"honor_dnt": true}`, 200, 30, ""},
		{"owner sets forever", w.ownerA, `{"retention_days": 0}`, 200, 0, ""},
		{"admin api key sets the maximum", w.aKeySecret, `{"retention_days": 3650}`, 200, 3650, ""},
		{"negative", w.admnA, `{"retention_days": -1}`, 400, 0, "retention_days must be a whole number of days from 1 to 3650, or 0 to keep data forever; got -1"},
		{"above the maximum", w.admnA, `{"retention_days": 3651}`, 400, 0, "got 3651"},
		{"fraction", w.admnA, `{"retention_days": 1.5}`, 400, 0, "retention_days"},
		{"string", w.admnA, `{"retention_days": "30"}`, 400, 0, "retention_days"},
		{"viewer", w.viewerA, `{"retention_days": 1}`, 403, 0, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if err := json.Unmarshal([]byte(tt.body), &body); err != nil {
				t.Fatal(err)
			}
			status, raw := apiCall(t, app, "PATCH", site, tt.bearer, body)
			if status != tt.status {
				t.Fatalf("PATCH %s = %d %s, want %d", tt.body, status, raw, tt.status)
			}
			var got map[string]any
			_ = json.Unmarshal([]byte(raw), &got)
			if status == 200 && got["retention_days"] != tt.want {
				t.Fatalf("retention_days = %v, want %v", got["retention_days"], tt.want)
			}
			if status != 200 && !strings.Contains(raw, tt.errText) {
				t.Fatalf("error %s does not say %q", raw, tt.errText)
			}
		})
	}
	// The last accepted value is stored: a second node reads it.
	other := openStore(t, s.db, testConfig(t))
	if st, err := other.Site(w.a.site.ID); err != nil || st.RetentionDays != 3650 || !st.HonorDNT {
		t.Fatalf("second store sees %+v, %v; want retention 3650", st, err)
	}
	// Another tenant's admin learns nothing.
	if status, raw := apiCall(t, app, "PATCH", "/api/v1/sites/"+w.b.site.ID.String(), w.admnA, map[string]any{"retention_days": 1}); status != 404 {
		t.Fatalf("cross-tenant PATCH = %d %s, want 404", status, raw)
	}
	if st, _ := s.Site(w.b.site.ID); st.RetentionDays != 0 {
		t.Fatalf("org B's site retention = %d after a refused PATCH", st.RetentionDays)
	}
	// A new site may carry its retention from the start.
	status, raw := apiCall(t, app, "POST", "/api/v1/orgs/"+w.a.org.ID.String()+"/sites", w.admnA,
		map[string]any{"domain": "kept.org-a.test", "retention_days": 400})
	if status != 201 || !strings.Contains(raw, `"retention_days":400`) {
		t.Fatalf("create with retention = %d %s", status, raw)
	}
	if status, raw := apiCall(t, app, "POST", "/api/v1/orgs/"+w.a.org.ID.String()+"/sites", w.admnA,
		map[string]any{"domain": "bad.org-a.test", "retention_days": 4000}); status != 400 || !strings.Contains(raw, "retention_days") {
		t.Fatalf("create with retention 4000 = %d %s, want 400 naming retention_days", status, raw)
	}
}

func TestDeletedSitesListsSitesWhoseDataMustGo(t *testing.T) {
	s := openStore(t, chtest.Open(t), testConfig(t))
	ctx := context.Background()
	a, b, c := newFixture(t, s, "keep"), newFixture(t, s, "drop-site"), newFixture(t, s, "drop-org")
	extra, err := s.CreateSite(ctx, c.org.ID, SiteInput{Domain: "second.drop-org.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSite(ctx, b.site.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOrg(ctx, c.org.ID); err != nil {
		t.Fatal(err)
	}
	ids := func(sites []Site) map[uuid.UUID]bool {
		out := map[uuid.UUID]bool{}
		for _, st := range sites {
			out[st.ID] = true
		}
		return out
	}
	// What a restarted node reads from ClickHouse, not only this node's memory.
	got := ids(openStore(t, s.db, testConfig(t)).DeletedSites())
	if !got[b.site.ID] || !got[c.site.ID] || !got[extra.ID] || got[a.site.ID] || len(got) != 3 {
		t.Fatalf("DeletedSites = %v; want %s, %s and %s but not the live %s", got, b.site.ID, c.site.ID, extra.ID, a.site.ID)
	}
}
