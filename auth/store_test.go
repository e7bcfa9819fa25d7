package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestStoreSecondNodeSeesEverything(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	a := openStore(t, db, cfg)
	f := newFixture(t, a, "acme")
	key, secret, err := a.CreateAPIKey(context.Background(), f.org.ID, "ci", []Scope{ScopeRead, ScopeIngest}, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 40 || secret[:apiKeyVisible] != key.Prefix || key.Prefix[:3] != "sk_" {
		t.Fatalf("secret %q… does not start with the visible prefix %q", secret[:apiKeyVisible], key.Prefix)
	}
	if f.site.PublicKey[:3] != "pk_" || len(f.site.PublicKey) < 20 {
		t.Fatalf("public key %q", f.site.PublicKey)
	}

	b := openStore(t, db, cfg) // reads everything from ClickHouse
	site, err := b.SiteByPublicKey(f.site.PublicKey)
	if err != nil || site.ID != f.site.ID || site.OrgID != f.org.ID || site.Domain != "acme.test" ||
		len(site.AllowedOrigins) != 1 || site.AllowedOrigins[0] != "https://acme.test" || site.TimeZone != "UTC" ||
		site.IdentitySecret != f.site.IdentitySecret {
		t.Fatalf("second store site = %+v, %v; want %+v", site, err, f.site)
	}
	if got := b.Members(f.org.ID); len(got) != 3 {
		t.Fatalf("second store members = %v, want 3", got)
	}
	if role, ok := b.RoleIn(&Principal{User: &f.viewer}, f.org.ID); !ok || role != RoleViewer {
		t.Fatalf("viewer role on second store = %q %v", role, ok)
	}
	k, err := b.AuthenticateAPIKey(secret)
	if err != nil || k.ID != key.ID || !k.HasScope(ScopeIngest) || k.HasScope(ScopeAdmin) {
		t.Fatalf("second store key = %+v, %v", k, err)
	}
	if _, _, err := b.Login(context.Background(), "Viewer@ACME.test", testPassword, netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatalf("login on second store: %v", err)
	}
	// Last use travels through ClickHouse too.
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k, _ := a.APIKey(key.ID); k.LastUsedAt.IsZero() {
		t.Fatal("last use recorded on the second store is not visible on the first")
	}
}

func TestRevokedKeyStopsWorkingOnOtherNode(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	a, b := openStore(t, db, cfg), openStore(t, db, cfg)
	f := newFixture(t, a, "acme")
	key, secret, err := a.CreateAPIKey(context.Background(), f.org.ID, "ci", []Scope{ScopeRead}, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	waitFor(t, propagation, "key works on node b", func() bool {
		_, err := b.Authenticate(secret)
		return err == nil
	})
	if err := a.RevokeAPIKey(context.Background(), key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(secret); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("revoked key on the revoking node: %v", err)
	}
	// Node b's next refresh (every cfg.RefreshInterval) reads the revocation.
	waitFor(t, propagation, "revoked key refused on node b", func() bool {
		_, err := b.Authenticate(secret)
		return errors.Is(err, ErrUnauthorized)
	})
}

func TestRemovedMemberLosesAccessOnOtherNode(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	a, b := openStore(t, db, cfg), openStore(t, db, cfg)
	f := newFixture(t, a, "acme")
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	sess, err := b.IssueSession(f.viewer)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Authenticate(sess.Token)
	if err != nil || len(b.VisibleSites(p, uuid.Nil)) != 1 {
		t.Fatalf("viewer before removal: %v, sites %v", err, b.VisibleSites(p, uuid.Nil))
	}
	if err := a.RemoveMember(context.Background(), f.org.ID, f.viewer.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sites := b.VisibleSites(p, uuid.Nil); len(sites) != 0 {
		t.Fatalf("removed member still sees %v", sites)
	}
	if err := b.Authorize(p, f.org.ID, RoleViewer); !errors.Is(err, ErrForbidden) {
		t.Fatalf("removed member authorized: %v", err)
	}
	if err := a.RemoveMember(context.Background(), f.org.ID, f.owner.ID); !errors.Is(err, ErrLastOwner) {
		t.Fatalf("removing the last owner: %v", err)
	}
}

// TestConcurrentCreatesYieldOneRecord races creates of one email and of one
// domain from goroutines on two nodes.
func TestConcurrentCreatesYieldOneRecord(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	stores := []*Store{openStore(t, db, cfg), openStore(t, db, cfg)}
	ctx := context.Background()
	org, err := stores[0].CreateOrg(ctx, "acme", uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stores[1:] {
		if err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const perStore = 6
	type result struct {
		password string
		user     User
		site     Site
		userErr  error
		siteErr  error
	}
	results := make(chan result, 2*perStore)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		for j := range perStore {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := result{password: fmt.Sprintf("password-%d-%d-long", i, j)}
				r.user, r.userErr = s.CreateUser(ctx, NewUser{Email: "Race@Example.com", Password: r.password})
				r.site, r.siteErr = s.CreateSite(ctx, org.ID, SiteInput{Domain: "Race.Example.com."})
				results <- r
			}()
		}
	}
	close(start)
	wg.Wait()
	close(results)

	var userWins, siteWins []result
	for r := range results {
		switch {
		case r.userErr == nil:
			userWins = append(userWins, r)
		case !errors.Is(r.userErr, ErrExists):
			t.Fatalf("create user: %v", r.userErr)
		}
		switch {
		case r.siteErr == nil:
			siteWins = append(siteWins, r)
		case !errors.Is(r.siteErr, ErrExists):
			t.Fatalf("create site: %v", r.siteErr)
		}
	}
	if len(userWins) != 1 || len(siteWins) != 1 {
		t.Fatalf("%d user creates and %d site creates succeeded, want 1 each", len(userWins), len(siteWins))
	}
	for i, s := range stores {
		if err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		u, err := s.UserByEmail("race@example.com")
		if err != nil || u.ID != userWins[0].user.ID {
			t.Fatalf("store %d: user %v, %v; want the winner %v", i, u.ID, err, userWins[0].user.ID)
		}
		if n := countLive(s.t.users, func(u User) bool { return u.Email == "race@example.com" }, &s.mu); n != 1 {
			t.Fatalf("store %d: %d live users with the email", i, n)
		}
		if n := countLive(s.t.sites, func(x Site) bool { return x.Domain == "race.example.com" }, &s.mu); n != 1 {
			t.Fatalf("store %d: %d live sites with the domain", i, n)
		}
		site, err := s.Site(siteWins[0].site.ID)
		if err != nil || site.PublicKey != siteWins[0].site.PublicKey {
			t.Fatalf("store %d: site %+v, %v; want the winner's public key", i, site, err)
		}
		// The winner's password is the one stored.
		if _, _, err := s.Login(ctx, "race@example.com", userWins[0].password, netip.MustParseAddr("192.0.2.7")); err != nil {
			t.Fatalf("store %d: login with the winner's password: %v", i, err)
		}
	}
}

func countLive[T any](m map[uuid.UUID]versioned[T], match func(T) bool, mu *sync.RWMutex) int {
	mu.RLock()
	defer mu.RUnlock()
	n := 0
	for _, v := range m {
		if !v.deleted && match(v.row) {
			n++
		}
	}
	return n
}

func TestDeleteAndRecreate(t *testing.T) {
	db := chtest.Open(t)
	s := openStore(t, db, testConfig(t))
	ctx := context.Background()
	f := newFixture(t, s, "acme")
	if _, err := s.CreateUser(ctx, NewUser{Email: "viewer@acme.test", Password: testPassword}); !errors.Is(err, ErrExists) {
		t.Fatalf("create existing email: %v", err)
	}
	if _, err := s.CreateSite(ctx, f.org.ID, SiteInput{Domain: "ACME.test"}); !errors.Is(err, ErrExists) {
		t.Fatalf("create existing domain: %v", err)
	}
	if err := s.DeleteUser(ctx, f.viewer.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSite(ctx, f.site.ID); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, NewUser{Email: "viewer@acme.test", Password: testPassword})
	if err != nil || u.ID == f.viewer.ID {
		t.Fatalf("re-created user %v, %v; want a new id", u.ID, err)
	}
	site, err := s.CreateSite(ctx, f.org.ID, SiteInput{Domain: "acme.test"})
	if err != nil || site.ID == f.site.ID || site.PublicKey == f.site.PublicKey {
		t.Fatalf("re-created site %v, %v; want a new id and key", site.ID, err)
	}
	if _, err := s.SiteByPublicKey(f.site.PublicKey); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted site's key still resolves: %v", err)
	}
	// A fresh node agrees.
	b := openStore(t, db, testConfig(t))
	if got, err := b.UserByEmail("viewer@acme.test"); err != nil || got.ID != u.ID {
		t.Fatalf("fresh node: user %v, %v", got.ID, err)
	}
	if _, err := b.Site(f.site.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("fresh node: deleted site: %v", err)
	}
	// The deleted viewer lost their membership and the new one has none.
	if _, ok := b.RoleIn(&Principal{User: &u}, f.org.ID); ok {
		t.Fatal("re-created user inherited the deleted user's membership")
	}
}

func TestDeleteOrgRevokesEverything(t *testing.T) {
	db := chtest.Open(t)
	s := openStore(t, db, testConfig(t))
	ctx := context.Background()
	f := newFixture(t, s, "acme")
	_, secret, err := s.CreateAPIKey(ctx, f.org.ID, "", []Scope{ScopeAdmin}, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, share, err := s.CreateShareLink(ctx, f.site.ID, "public", time.Hour, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOrg(ctx, f.org.ID); err != nil {
		t.Fatal(err)
	}
	b := openStore(t, db, testConfig(t))
	for _, st := range []*Store{s, b} {
		if _, err := st.Authenticate(secret); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("API key of a deleted org: %v", err)
		}
		if _, err := st.SiteByPublicKey(f.site.PublicKey); !errors.Is(err, ErrNotFound) {
			t.Fatalf("site of a deleted org: %v", err)
		}
		if len(st.Memberships(f.owner.ID)) != 0 {
			t.Fatal("membership of a deleted org")
		}
	}
	if _, err := s.Authenticate(share); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("share link of a deleted org: %v", err)
	}
}

func TestVersionsOrderCreatesAndUpdates(t *testing.T) {
	s := &Store{}
	early, late := createVersion(time.Now()), createVersion(time.Now().Add(time.Millisecond))
	if early <= late {
		t.Fatalf("an earlier create (%d) must outrank a later one (%d)", early, late)
	}
	u1, u2 := s.updateVersion(), s.updateVersion()
	if u1 <= early || u2 <= u1 {
		t.Fatalf("updates %d, %d must outrank creates (%d) and grow", u1, u2, early)
	}
}

// propagation bounds the wait for another node's refresh loop (which runs
// every RefreshInterval, 200 ms in tests) to pick up a change: generous,
// because on a loaded machine one refresh can take longer than an interval,
// and a change that never arrives fails all the same.
const propagation = 30 * time.Second

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOpenOnUnmigratedDatabaseSaysWhatToDo(t *testing.T) {
	db := chtest.Open(t)
	if err := db.Exec(context.Background(), "DROP TABLE auth_orgs"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), db, testConfig(t))
	if err == nil || !strings.Contains(err.Error(), "pulse migrate") {
		t.Fatalf("Open without the auth tables = %v, want advice to migrate", err)
	}
}
