package auth

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// Lists read the same on every call and on every node: rows made in the
// same second (created_at is stored in seconds) are ordered by id, not by
// the order of a map.
func TestListsHaveOneOrder(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	s := openStore(t, db, cfg)
	ctx := context.Background()
	f := newFixture(t, s, "acme")
	for i := range 6 {
		if _, _, err := s.CreateAPIKey(ctx, f.org.ID, fmt.Sprintf("key %d", i), []Scope{ScopeRead}, f.owner.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CreateInvite(ctx, f.org.ID, fmt.Sprintf("invitee%d@acme.test", i), RoleViewer, f.owner.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateOrg(ctx, "Same name", f.owner.ID); err != nil {
			t.Fatal(err)
		}
	}

	keyIDs := func(s *Store) []string {
		var out []string
		for _, k := range s.APIKeys(f.org.ID) {
			out = append(out, k.CreatedAt.Format("15:04:05")+" "+k.ID.String())
		}
		return out
	}
	inviteIDs := func(s *Store) []string {
		var out []string
		for _, in := range s.Invites(f.org.ID) {
			out = append(out, in.CreatedAt.Format("15:04:05")+" "+in.ID.String())
		}
		return out
	}
	orgIDs := func(s *Store) []string {
		var out []string
		for _, o := range s.Orgs() {
			out = append(out, o.Name+" "+o.ID.String())
		}
		return out
	}
	memberIDs := func(s *Store) []string {
		var out []string
		for _, m := range s.Members(f.org.ID) {
			out = append(out, m.CreatedAt.Format("15:04:05")+" "+m.UserID.String())
		}
		return out
	}
	firstOrg := func(s *Store) []string {
		ms := s.Memberships(f.owner.ID)
		if len(ms) == 0 {
			return nil
		}
		return []string{ms[0].OrgID.String()}
	}
	lists := []struct {
		name string
		list func(*Store) []string
		// ordered reports whether a precedes b in the documented order.
		ordered func(a, b string) bool
	}{
		{"API keys (newest first)", keyIDs, func(a, b string) bool { return a[:8] > b[:8] || a[:8] == b[:8] && a < b }},
		{"invites (oldest first)", inviteIDs, func(a, b string) bool { return a < b }},
		{"orgs (by name)", orgIDs, func(a, b string) bool { return a < b }},
		{"members (oldest first)", memberIDs, func(a, b string) bool { return a < b }},
		{"a user's first org", firstOrg, func(a, b string) bool { return true }},
	}
	// Each store reads the tables anew into its own maps.
	stores := []*Store{s}
	for range 8 {
		stores = append(stores, openStore(t, db, cfg))
	}
	for _, l := range lists {
		want := l.list(s)
		if len(want) == 0 {
			t.Fatalf("%s: empty", l.name)
		}
		for i := 1; i < len(want); i++ {
			if !l.ordered(want[i-1], want[i]) {
				t.Errorf("%s: %q before %q", l.name, want[i-1], want[i])
			}
		}
		for i, st := range stores {
			for range 5 {
				if got := l.list(st); !slices.Equal(got, want) {
					t.Fatalf("%s on store %d:\n%v\nwant\n%v", l.name, i, got, want)
				}
			}
		}
	}
}
