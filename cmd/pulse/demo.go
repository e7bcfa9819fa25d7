package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulse-analytics/pulse/auth"
)

// The demo tenant of `pulse dev`.
const (
	demoEmail        = "demo@pulse.localhost"
	demoOrgName      = "Demo"
	demoDomain       = "demo.localhost"
	demoPasswordFile = "demo-password"
)

// demoLogin is what `pulse dev` prints so a newcomer can log in and send events.
type demoLogin struct {
	email, password string
	site            auth.Site
}

// ensureDemo makes sure the demo user, organization and site exist, and that
// the site accepts events from the dashboard's own origin. The password is
// generated on first start and kept in the data directory.
func ensureDemo(ctx context.Context, s *auth.Store, dataDir, origin string) (demoLogin, error) {
	password, err := demoPassword(dataDir)
	if err != nil {
		return demoLogin{}, err
	}
	user, err := s.UserByEmail(demoEmail)
	if errors.Is(err, auth.ErrNotFound) {
		user, err = s.CreateUser(ctx, auth.NewUser{Email: demoEmail, Name: "Demo", Password: password})
	}
	if err != nil {
		return demoLogin{}, fmt.Errorf("demo user: %w", err)
	}
	var org auth.Org
	if ms := s.Memberships(user.ID); len(ms) > 0 {
		org, err = s.Org(ms[0].OrgID)
	} else {
		org, err = s.CreateOrg(ctx, demoOrgName, user.ID)
	}
	if err != nil {
		return demoLogin{}, fmt.Errorf("demo organization: %w", err)
	}
	var site auth.Site
	for _, st := range s.Sites(org.ID) {
		if st.Domain == demoDomain {
			site = st
		}
	}
	if site.PublicKey == "" {
		site, err = s.CreateSite(ctx, org.ID, auth.SiteInput{Domain: demoDomain, AllowedOrigins: []string{origin}})
	} else if !slices.Contains(site.AllowedOrigins, origin) {
		origins := append(slices.Clone(site.AllowedOrigins), origin)
		site, err = s.UpdateSite(ctx, site.ID, auth.SiteUpdate{AllowedOrigins: &origins})
	}
	if err != nil {
		return demoLogin{}, fmt.Errorf("demo site: %w", err)
	}
	return demoLogin{email: demoEmail, password: password, site: site}, nil
}

// demoPassword reads the demo password from the data directory, creating it
// on first use.
func demoPassword(dataDir string) (string, error) {
	path := filepath.Join(dataDir, demoPasswordFile)
	if raw, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(raw)), nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("demo password: %w", err)
	}
	password := "demo-" + rand.Text()[:16]
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo password: %w", err)
	}
	return password, nil
}

func (d demoLogin) print(w io.Writer, base string) {
	fmt.Fprintf(w, `
Pulse is running at %[1]s
  health:   %[1]s/readyz
  metrics:  %[1]s/metrics
  log in:   %[2]s / %[3]s
            curl -X POST %[1]s/api/v1/login -d '{"email":"%[2]s","password":"%[3]s"}'
  demo site %[4]s, site key: %[5]s
  send an event:
            curl -X POST '%[1]s/v1/events?site=%[5]s' -d '{"type":"page","url":"https://%[4]s/"}'
Ctrl-C stops Pulse and the ClickHouse it started.

`, base, d.email, d.password, d.site.Domain, d.site.PublicKey)
}
