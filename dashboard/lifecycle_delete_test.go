package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// eraseWorld is two tenants: A with two sites, an owner, an admin and a
// viewer; B with one site and its owner. The same user id and session id
// appear in several places, so a deletion scoped too widely shows.
type eraseWorld struct {
	db                               *chdb.DB
	s                                *auth.Store
	app                              *fiber.App
	a, a2, b                         auth.Site
	ownerA, adminA, viewerA, ownerB  string // bearer tokens
	shareA                           string
	u1Visit, u1Later, u2, anon, a2u1 []lcEvent
	bEvents                          []lcEvent
}

func newEraseWorld(t *testing.T) *eraseWorld {
	t.Helper()
	ctx := context.Background()
	w := &eraseWorld{db: chtest.Open(t)}
	w.s = authtest.Store(t, w.db, auth.Config{})
	ta, tb := authtest.NewTenant(t, w.s, "erase-a.test"), authtest.NewTenant(t, w.s, "erase-b.test")
	w.a, w.b = ta.Site, tb.Site
	var err error
	if w.a2, err = w.s.CreateSite(ctx, ta.Org.ID, auth.SiteInput{Domain: "second.erase-a.test"}); err != nil {
		t.Fatal(err)
	}
	session := func(u auth.User) string {
		t.Helper()
		sess, err := w.s.IssueSession(u)
		if err != nil {
			t.Fatal(err)
		}
		return sess.Token
	}
	member := func(email string, role auth.Role) string {
		t.Helper()
		u, err := w.s.CreateUser(ctx, auth.NewUser{Email: email, Name: string(role), Password: authtest.Password})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.s.AddMember(ctx, ta.Org.ID, u.ID, role); err != nil {
			t.Fatal(err)
		}
		return session(u)
	}
	w.ownerA, w.ownerB = session(ta.Owner), session(tb.Owner)
	w.adminA, w.viewerA = member("admin@erase-a.test", auth.RoleAdmin), member("viewer@erase-a.test", auth.RoleViewer)
	if _, w.shareA, err = w.s.CreateShareLink(ctx, w.a.ID, "public", time.Hour, ta.Owner.ID); err != nil {
		t.Fatal(err)
	}

	day := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return day.Add(time.Duration(min) * time.Minute) }
	// User u-1 on site a: a visit whose first page came before identify,
	// and a later visit.
	w.u1Visit = insertLifecycleEvents(t, w.db,
		lcEvent{site: w.a, ts: at(0), session: 11, visitor: 100},
		lcEvent{site: w.a, ts: at(1), session: 11, visitor: 100, user: "u-1"},
		lcEvent{site: w.a, ts: at(2), session: 11, visitor: 100, user: "u-1"})
	w.u1Later = insertLifecycleEvents(t, w.db, lcEvent{site: w.a, ts: at(24 * 60), session: 12, visitor: 101, user: "u-1"})
	w.u2 = insertLifecycleEvents(t, w.db, lcEvent{site: w.a, ts: at(5), session: 13, visitor: 200, user: "u-2"})
	w.anon = insertLifecycleEvents(t, w.db,
		lcEvent{site: w.a, ts: at(6), session: 14, visitor: 300},
		lcEvent{site: w.a, ts: at(7), session: 14, visitor: 300})
	// The same user id on the tenant's other site, and the same user and
	// session ids in another tenant.
	w.a2u1 = insertLifecycleEvents(t, w.db, lcEvent{site: w.a2, ts: at(0), session: 11, visitor: 100, user: "u-1"})
	w.bEvents = insertLifecycleEvents(t, w.db,
		lcEvent{site: w.b, ts: at(0), session: 11, visitor: 100, user: "u-1"},
		lcEvent{site: w.b, ts: at(0), session: 14, visitor: 300})

	w.app = fiber.New()
	auth.NewAPI(w.s, slog.New(slog.DiscardHandler)).Register(w.app)
	NewLifecycle(w.db, w.s, LifecycleConfig{Logger: slog.New(slog.DiscardHandler)}).Register(w.app)
	return w
}

// call sends a request as a script would and decodes the JSON answer.
func (w *eraseWorld) call(t *testing.T, method, path, bearer, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "https://app.pulse.test"+path, rd)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := w.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s answered %d with %q, not a JSON object", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (w *eraseWorld) checkUntouched(t *testing.T) {
	t.Helper()
	if got, want := storedEvents(t, w.db, w.a2), idsOf(w.a2u1...); !slices.Equal(got, want) {
		t.Errorf("the tenant's other site has events %v, want %v", got, want)
	}
	if got := storedVisits(t, w.db, w.a2); !slices.Equal(got, []uint64{11}) {
		t.Errorf("the tenant's other site has visits %v, want [11]", got)
	}
	if got, want := storedEvents(t, w.db, w.b), idsOf(w.bEvents...); !slices.Equal(got, want) {
		t.Errorf("another tenant's site has events %v, want %v", got, want)
	}
	if got := storedVisits(t, w.db, w.b); !slices.Equal(got, []uint64{11, 14}) {
		t.Errorf("another tenant's site has visits %v, want [11 14]", got)
	}
}

func TestLifecycleEraseRemovesExactlyOnePersonsEventsAndVisits(t *testing.T) {
	w := newEraseWorld(t)
	erase := "/api/v1/sites/" + w.a.ID.String() + "/erase?wait=25s"

	status, got := w.call(t, "POST", erase, w.adminA, `{"user_id": "u-1"}`)
	if status != 200 || got["status"] != "done" || got["events"] != 4.0 || got["visits"] != 2.0 {
		t.Fatalf("erase u-1 = %d %v; want 200 done with 4 events (3 of the visit, 1 later) in 2 visits", status, got)
	}
	if ms, _ := got["mutations"].([]any); len(ms) != 5 {
		t.Errorf("mutations = %v; want one each on events, engagement_events, sessions, sessions_final and sessions_recent", got["mutations"])
	}
	// Done means gone: read right after the answer, without waiting.
	if got, want := storedEvents(t, w.db, w.a), idsOf(append(w.u2, w.anon...)...); !slices.Equal(got, want) {
		t.Errorf("site a keeps events %v, want only u-2's and the anonymous visitor's %v", got, want)
	}
	if got := storedVisits(t, w.db, w.a); !slices.Equal(got, []uint64{13, 14}) {
		t.Errorf("site a keeps visits %v, want [13 14]", got)
	}
	w.checkUntouched(t)

	// A visitor id, as a string (ids above 2^53 do not survive JSON numbers).
	status, got = w.call(t, "POST", erase, w.ownerA, `{"visitor_id": "300"}`)
	if status != 200 || got["status"] != "done" || got["events"] != 2.0 || got["visits"] != 1.0 {
		t.Fatalf("erase visitor 300 = %d %v; want 200 done, 2 events in 1 visit", status, got)
	}
	if got, want := storedEvents(t, w.db, w.a), idsOf(w.u2...); !slices.Equal(got, want) {
		t.Errorf("site a keeps events %v, want only u-2's %v", got, want)
	}
	if got := storedVisits(t, w.db, w.a); !slices.Equal(got, []uint64{13}) {
		t.Errorf("site a keeps visits %v, want [13]", got)
	}
	w.checkUntouched(t)

	// Nobody matches: nothing to do, no mutation.
	status, got = w.call(t, "POST", erase, w.adminA, `{"visitor_id": 999}`)
	if ms, _ := got["mutations"].([]any); status != 200 || got["status"] != "done" || got["events"] != 0.0 || ms == nil || len(ms) != 0 {
		t.Fatalf("erase of an unknown visitor = %d %v; want 200 done, 0 events, no mutations", status, got)
	}
}

func TestLifecycleDeleteSiteData(t *testing.T) {
	w := newEraseWorld(t)
	path := "/api/v1/sites/" + w.a.ID.String() + "/data"

	// Without waiting the answer is 202 while ClickHouse works, or 200 when
	// it was faster; pending deletions are listed until they finish.
	status, got := w.call(t, "DELETE", path+"?wait=0s", w.adminA, "")
	if ms, _ := got["mutations"].([]any); len(ms) != 3 ||
		!(status == 202 && got["status"] == "pending" || status == 200 && got["status"] == "done") {
		t.Fatalf("DELETE data = %d %v; want 202 pending (or 200 done) with three mutations: events, event_ids, sessions", status, got)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, got := w.call(t, "GET", "/api/v1/sites/"+w.a.ID.String()+"/deletions", w.adminA, "")
		if status != 200 {
			t.Fatalf("GET deletions = %d %v", status, got)
		}
		if pending := got["pending"].([]any); len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deletions still pending after 60 s: %v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := storedEvents(t, w.db, w.a); len(got) != 0 {
		t.Errorf("site a keeps events %v after its data was deleted", got)
	}
	if got := storedVisits(t, w.db, w.a); len(got) != 0 {
		t.Errorf("site a keeps visits %v after its data was deleted", got)
	}
	w.checkUntouched(t)
	if _, err := w.s.Site(w.a.ID); err != nil {
		t.Errorf("the site itself is gone: %v", err)
	}

	// Again: nothing left, so nothing to do.
	status, got = w.call(t, "DELETE", path, w.ownerA, "")
	if ms, _ := got["mutations"].([]any); status != 200 || got["status"] != "done" || len(ms) != 0 {
		t.Fatalf("second DELETE data = %d %v; want 200 done without mutations", status, got)
	}
}

func TestLifecycleAPIRefusesWhoMayNot(t *testing.T) {
	w := newEraseWorld(t)
	site := "/api/v1/sites/" + w.a.ID.String()
	routes := []struct{ method, path, body string }{
		{"POST", site + "/erase?wait=0s", `{"user_id": "u-1"}`},
		{"DELETE", site + "/data?wait=0s", ""},
		{"GET", site + "/deletions", ""},
	}
	for _, r := range routes {
		for _, tt := range []struct {
			name   string
			bearer string
			status int
		}{
			{"anonymous", "", 401},
			{"viewer", w.viewerA, 403},
			{"share link", w.shareA, 403},
			{"owner of another tenant", w.ownerB, 404},
		} {
			t.Run(r.method+" "+tt.name, func(t *testing.T) {
				status, got := w.call(t, r.method, r.path, tt.bearer, r.body)
				if status != tt.status || got["error"] == nil {
					t.Fatalf("%s %s as %s = %d %v, want %d with an error", r.method, r.path, tt.name, status, got, tt.status)
				}
			})
		}
	}
	// Another tenant's owner naming its own site with a foreign site's path
	// parts learns nothing either; unknown and malformed ids are not found.
	for _, path := range []string{"/api/v1/sites/" + uuid.NewString() + "/erase", "/api/v1/sites/not-an-id/erase"} {
		if status, got := w.call(t, "POST", path, w.ownerA, `{"user_id": "u-1"}`); status != 404 {
			t.Errorf("POST %s = %d %v, want 404", path, status, got)
		}
	}
	// Nothing was deleted by any of the refused requests.
	if got := storedEvents(t, w.db, w.a); len(got) != 7 {
		t.Errorf("site a has %d events after refused requests, want all 7", len(got))
	}
	w.checkUntouched(t)
}

func TestLifecycleEraseValidatesTheRequest(t *testing.T) {
	w := newEraseWorld(t)
	path := "/api/v1/sites/" + w.a.ID.String() + "/erase"
	tests := []struct {
		name, query, body, errText string
	}{
		{"nobody named", "", `{}`, `name the person to erase`},
		{"both", "", `{"user_id": "u-1", "visitor_id": 100}`, "not both"},
		{"empty user id", "", `{"user_id": ""}`, "user_id must be"},
		{"long user id", "", `{"user_id": "` + strings.Repeat("x", maxUserIDLength+1) + `"}`, "user_id must be"},
		{"visitor id not a number", "", `{"visitor_id": "abc"}`, "visitor_id must be a positive whole number"},
		{"visitor id negative", "", `{"visitor_id": -1}`, "visitor_id must be"},
		{"visitor id zero", "", `{"visitor_id": 0}`, "visitor_id must be"},
		{"not JSON", "", `user_id=u-1`, "JSON object"},
		{"wait too long", "?wait=1h", `{"user_id": "u-1"}`, "wait must be a duration from 0s to 25s"},
		{"wait not a duration", "?wait=soon", `{"user_id": "u-1"}`, "wait must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, got := w.call(t, "POST", path+tt.query, w.adminA, tt.body)
			if msg, _ := got["error"].(string); status != 400 || !strings.Contains(msg, tt.errText) {
				t.Fatalf("POST %s = %d %v, want 400 saying %q", tt.body, status, got, tt.errText)
			}
		})
	}
	if got := storedEvents(t, w.db, w.a); len(got) != 7 {
		t.Errorf("site a has %d events after refused requests, want all 7", len(got))
	}
}

func TestLifecycleEraseManyVisitsInSeveralMutations(t *testing.T) {
	db := chtest.Open(t)
	s := authtest.Store(t, db, auth.Config{})
	site := authtest.NewTenant(t, s, "busy.test").Site
	other := authtest.NewTenant(t, s, "quiet.test").Site
	n := maxSessionsPerMutation + 10
	evs := make([]lcEvent, 0, n+1)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		evs = append(evs, lcEvent{site: site, ts: start.Add(time.Duration(i) * time.Minute), session: uint64(1_000_000 + i), visitor: 5, user: "heavy"})
	}
	evs = append(evs, lcEvent{site: site, ts: start, session: 42, visitor: 6, user: "light"})
	insertLifecycleEvents(t, db, evs...)
	insertLifecycleEvents(t, db, lcEvent{site: other, ts: start, session: 1_000_000, visitor: 5, user: "heavy"})

	l := newTestLifecycle(db, s, 0)
	ctx := context.Background()
	d, err := l.Erase(ctx, site, Subject{UserID: "heavy"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Visits != n || d.Events != uint64(n) || len(d.Mutations) != 10 {
		t.Fatalf("erase = %d visits, %d events, %d mutations; want %d, %d and 10 (two chunks of session ids, five tables)",
			d.Visits, d.Events, len(d.Mutations), n, n)
	}
	if d, err = l.Wait(ctx, site, d, 60*time.Second); err != nil || !d.Done() {
		t.Fatalf("wait = %+v, %v", d, err)
	}
	if got := storedVisits(t, db, site); !slices.Equal(got, []uint64{42}) {
		t.Errorf("visits left = %d (first %v), want only the other user's [42]", len(got), got[:min(len(got), 3)])
	}
	if got := storedEvents(t, db, site); len(got) != 1 {
		t.Errorf("events left = %d, want the other user's one", len(got))
	}
	if got := storedVisits(t, db, other); !slices.Equal(got, []uint64{1_000_000}) {
		t.Errorf("another tenant's visits = %v, want [1000000]", got)
	}
}
