package auth

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// testConfig is a Config with cheap password hashing and a fresh key file.
func testConfig(t testing.TB) Config {
	return Config{
		DataDir:         t.TempDir(),
		DashboardOrigin: "https://app.pulse.test",
		Password:        PasswordParams{Time: 1, MemoryKiB: 1024, Threads: 1},
		RefreshInterval: 200 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// openStore opens a Store on db with cfg.
func openStore(t testing.TB, db *chdb.DB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), db, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

// fixture is one org with an owner, an admin, a viewer and a site.
type fixture struct {
	org                  Org
	owner, admin, viewer User
	site                 Site
}

const testPassword = "correct horse battery"

func newFixture(t testing.TB, s *Store, name string) fixture {
	t.Helper()
	ctx := context.Background()
	var f fixture
	var err error
	mk := func(role string) User {
		u, err := s.CreateUser(ctx, NewUser{Email: role + "@" + name + ".test", Name: role, Password: testPassword})
		if err != nil {
			t.Fatalf("create %s: %v", role, err)
		}
		return u
	}
	f.owner, f.admin, f.viewer = mk("owner"), mk("admin"), mk("viewer")
	if f.org, err = s.CreateOrg(ctx, name, f.owner.ID); err != nil {
		t.Fatal(err)
	}
	if _, err = s.AddMember(ctx, f.org.ID, f.admin.ID, RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err = s.AddMember(ctx, f.org.ID, f.viewer.ID, RoleViewer); err != nil {
		t.Fatal(err)
	}
	if f.site, err = s.CreateSite(ctx, f.org.ID, SiteInput{Domain: name + ".test"}); err != nil {
		t.Fatal(err)
	}
	return f
}
