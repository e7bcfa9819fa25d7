// Package authtest gives tests a real auth.Store on a real ClickHouse and
// tenants in it: an organization, its owner and a site.
package authtest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/chdb"
)

// Password is the password of every user authtest creates.
const Password = "correct horse battery"

// Store opens an auth store on db. Empty DataDir, Logger and Password fields of
// cfg get a temporary directory, a discarding logger and cheap argon2id costs.
func Store(t testing.TB, db *chdb.DB, cfg auth.Config) *auth.Store {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Password == (auth.PasswordParams{}) {
		cfg.Password = auth.PasswordParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	}
	s, err := auth.Open(context.Background(), db, cfg)
	if err != nil {
		t.Fatalf("authtest: open store: %v", err)
	}
	return s
}

// Tenant is one organization with its owner and one site.
type Tenant struct {
	Owner auth.User
	Org   auth.Org
	Site  auth.Site
}

// NewTenant creates owner@DOMAIN, an organization named after the domain, and
// a site on domain that accepts events from origins (default https://DOMAIN).
func NewTenant(t testing.TB, s *auth.Store, domain string, origins ...string) Tenant {
	t.Helper()
	ctx := context.Background()
	var (
		tn  Tenant
		err error
	)
	if tn.Owner, err = s.CreateUser(ctx, auth.NewUser{Email: "owner@" + domain, Name: "Owner", Password: Password}); err != nil {
		t.Fatalf("authtest: create owner: %v", err)
	}
	if tn.Org, err = s.CreateOrg(ctx, domain, tn.Owner.ID); err != nil {
		t.Fatalf("authtest: create org: %v", err)
	}
	if tn.Site, err = s.CreateSite(ctx, tn.Org.ID, auth.SiteInput{Domain: domain, AllowedOrigins: origins}); err != nil {
		t.Fatalf("authtest: create site: %v", err)
	}
	return tn
}
