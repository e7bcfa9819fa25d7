package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
)

// adminArgs are the options of one admin action. They are arguments of that
// action, not configuration, so they have no PULSE_* twins.
type adminArgs struct {
	org, site, email, name, role, domain, timeZone, id, password string
	origins, scopes                                              string
	operator, honorDNT                                           bool
	ttl                                                          time.Duration
	from, to                                                     string
	eventsPerSecond, maxConnections                              uint
	eventsPerMonth                                               uint64
	retentionDays                                                int64
}

// adminAction is one `pulse admin NOUN VERB`.
type adminAction struct {
	usage string
	flags func(fs *flag.FlagSet, a *adminArgs)
	run   func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error)
}

func adminActions() map[string]adminAction {
	org := func(fs *flag.FlagSet, a *adminArgs) { fs.StringVar(&a.org, "org", "", "organization id") }
	return map[string]adminAction{
		"user create": {
			usage: "--email E --name N [--password P] [--operator]: create a user (a password is generated and printed when not given)",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				fs.StringVar(&a.email, "email", "", "email address")
				fs.StringVar(&a.name, "name", "", "display name")
				fs.StringVar(&a.password, "password", "", "password (default: generated)")
				fs.BoolVar(&a.operator, "operator", false, "operator of the hosted service, above all tenants")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				generated := a.password == ""
				if generated {
					a.password = rand.Text()
				}
				u, err := s.CreateUser(ctx, auth.NewUser{Email: a.email, Name: a.name, Password: a.password, Operator: a.operator})
				if err != nil {
					return nil, err
				}
				if generated {
					return map[string]any{"user": u, "password": a.password}, nil
				}
				return u, nil
			},
		},
		"user list": {usage: ": list users", run: func(_ context.Context, s *auth.Store, _ *adminArgs) (any, error) { return s.Users(), nil }},
		"user operator": {
			usage: "--email E [--operator=false]: grant or withdraw the operator role",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				fs.StringVar(&a.email, "email", "", "email address")
				fs.BoolVar(&a.operator, "operator", true, "operator or not")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				u, err := s.UserByEmail(a.email)
				if err != nil {
					return nil, err
				}
				return s.SetOperator(ctx, u.ID, a.operator)
			},
		},
		"org create": {
			usage: "--name N --owner-email E: create an organization owned by an existing user",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				fs.StringVar(&a.name, "name", "", "organization name")
				fs.StringVar(&a.email, "owner-email", "", "email of the owner")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				u, err := s.UserByEmail(a.email)
				if err != nil {
					return nil, err
				}
				return s.CreateOrg(ctx, a.name, u.ID)
			},
		},
		"org list": {usage: ": list organizations", run: func(_ context.Context, s *auth.Store, _ *adminArgs) (any, error) { return s.Orgs(), nil }},
		"org quota": {
			usage: "--org ID [--events-per-second N] [--events-per-month N] [--max-connections N]: set a tenant's quota (0 keeps the default)",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				org(fs, a)
				fs.UintVar(&a.eventsPerSecond, "events-per-second", 0, "sustained events per second per node")
				fs.Uint64Var(&a.eventsPerMonth, "events-per-month", 0, "events stored per calendar month (UTC), with those in flight (docs/auth.md)")
				fs.UintVar(&a.maxConnections, "max-connections", 0, "concurrent WebSocket connections per node")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("org", a.org)
				if err != nil {
					return nil, err
				}
				return s.SetQuota(ctx, id, auth.Quota{EventsPerSecond: uint32(a.eventsPerSecond), EventsPerMonth: a.eventsPerMonth, MaxConnections: uint32(a.maxConnections)})
			},
		},
		"org usage": {
			usage: "--org ID [--from 2026-11-01] [--to 2026-11-30]: events per day",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				org(fs, a)
				fs.StringVar(&a.from, "from", "", "first day (default: 30 days ago)")
				fs.StringVar(&a.to, "to", "", "last day (default: today)")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("org", a.org)
				if err != nil {
					return nil, err
				}
				to, from := time.Now().UTC(), time.Now().UTC().AddDate(0, 0, -30)
				for _, d := range []struct {
					name string
					in   string
					out  *time.Time
				}{{"--from", a.from, &from}, {"--to", a.to, &to}} {
					if d.in == "" {
						continue
					}
					if *d.out, err = time.Parse(time.DateOnly, d.in); err != nil {
						return nil, usageError{d.name + " must be a date like 2026-11-24"}
					}
				}
				return s.Usage(ctx, id, from, to)
			},
		},
		"site create": {
			usage: "--org ID --domain D [--origins https://a,https://b] [--time-zone Europe/Berlin] [--honor-dnt] [--retention-days N]: add a site",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				org(fs, a)
				fs.StringVar(&a.domain, "domain", "", "the site's domain")
				fs.StringVar(&a.origins, "origins", "", "comma-separated origins allowed to send events (default: https://DOMAIN)")
				fs.StringVar(&a.timeZone, "time-zone", "", "IANA time zone of reports (default UTC)")
				fs.BoolVar(&a.honorDNT, "honor-dnt", false, "drop events of browsers that send Do Not Track")
				fs.Int64Var(&a.retentionDays, "retention-days", 0, "days of events and visits to keep (0: forever)")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("org", a.org)
				if err != nil {
					return nil, err
				}
				return s.CreateSite(ctx, id, auth.SiteInput{Domain: a.domain, AllowedOrigins: splitList(a.origins), TimeZone: a.timeZone,
					HonorDNT: a.honorDNT, RetentionDays: a.retentionDays})
			},
		},
		"site retention": {
			usage: "--site ID --days N: keep N days of a site's events and visits (0: forever); older ones are deleted within the hour",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				fs.StringVar(&a.site, "site", "", "site id")
				fs.Int64Var(&a.retentionDays, "days", -1, "days to keep (0: forever)")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("site", a.site)
				if err != nil {
					return nil, err
				}
				if a.retentionDays < 0 {
					return nil, usageError{"--days is required: the number of days to keep, or 0 to keep forever"}
				}
				return s.UpdateSite(ctx, id, auth.SiteUpdate{RetentionDays: &a.retentionDays})
			},
		},
		"site list": {
			usage: "[--org ID]: list sites",
			flags: org,
			run: func(_ context.Context, s *auth.Store, a *adminArgs) (any, error) {
				if a.org == "" {
					var all []auth.Site
					for _, o := range s.Orgs() {
						all = append(all, s.Sites(o.ID)...)
					}
					return all, nil
				}
				id, err := parseID("org", a.org)
				if err != nil {
					return nil, err
				}
				return s.Sites(id), nil
			},
		},
		"member add": {
			usage: "--org ID --email E --role viewer|admin|owner: add an existing user to an organization or change their role",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				org(fs, a)
				fs.StringVar(&a.email, "email", "", "the user's email")
				fs.StringVar(&a.role, "role", string(auth.RoleViewer), "viewer, admin or owner")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, u, err := orgAndUser(s, a)
				if err != nil {
					return nil, err
				}
				return s.AddMember(ctx, id, u.ID, auth.Role(a.role))
			},
		},
		"member remove": {
			usage: "--org ID --email E: remove a user from an organization",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				org(fs, a)
				fs.StringVar(&a.email, "email", "", "the user's email")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, u, err := orgAndUser(s, a)
				if err != nil {
					return nil, err
				}
				return map[string]any{"removed": u.Email}, s.RemoveMember(ctx, id, u.ID)
			},
		},
		"member list": {
			usage: "--org ID: list an organization's members",
			flags: org,
			run: func(_ context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("org", a.org)
				if err != nil {
					return nil, err
				}
				return s.Members(id), nil
			},
		},
		"key create": {
			usage: "--org ID --name N --scopes ingest,read,admin: create a secret API key (shown once)",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				org(fs, a)
				fs.StringVar(&a.name, "name", "", "what the key is for")
				fs.StringVar(&a.scopes, "scopes", "", "comma-separated: ingest, read, admin")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("org", a.org)
				if err != nil {
					return nil, err
				}
				var scopes []auth.Scope
				for _, sc := range splitList(a.scopes) {
					scopes = append(scopes, auth.Scope(sc))
				}
				key, secret, err := s.CreateAPIKey(ctx, id, a.name, scopes, uuid.Nil)
				if err != nil {
					return nil, err
				}
				return map[string]any{"api_key": key, "secret": secret}, nil
			},
		},
		"key list": {
			usage: "--org ID: list an organization's API keys",
			flags: org,
			run: func(_ context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("org", a.org)
				if err != nil {
					return nil, err
				}
				return s.APIKeys(id), nil
			},
		},
		"key revoke": {
			usage: "--id ID: revoke an API key (refused on every node within the refresh interval)",
			flags: func(fs *flag.FlagSet, a *adminArgs) { fs.StringVar(&a.id, "id", "", "API key id") },
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("key", a.id)
				if err != nil {
					return nil, err
				}
				return map[string]any{"revoked": id}, s.RevokeAPIKey(ctx, id)
			},
		},
		"share create": {
			usage: "--site ID --name N [--ttl 720h]: create a read-only share link to one site",
			flags: func(fs *flag.FlagSet, a *adminArgs) {
				fs.StringVar(&a.site, "site", "", "site id")
				fs.StringVar(&a.name, "name", "", "what the link is for")
				fs.DurationVar(&a.ttl, "ttl", 0, "lifetime (default 30 days)")
			},
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("site", a.site)
				if err != nil {
					return nil, err
				}
				link, token, err := s.CreateShareLink(ctx, id, a.name, a.ttl, uuid.Nil)
				if err != nil {
					return nil, err
				}
				return map[string]any{"share_link": link, "token": token}, nil
			},
		},
		"share revoke": {
			usage: "--id ID: revoke a share link",
			flags: func(fs *flag.FlagSet, a *adminArgs) { fs.StringVar(&a.id, "id", "", "share link id") },
			run: func(ctx context.Context, s *auth.Store, a *adminArgs) (any, error) {
				id, err := parseID("share link", a.id)
				if err != nil {
					return nil, err
				}
				return map[string]any{"revoked": id}, s.RevokeShareLink(ctx, id)
			},
		},
		"keys rotate": {
			usage: ": add a new signing key; tokens signed with older keys keep working until they expire",
			run: func(_ context.Context, s *auth.Store, _ *adminArgs) (any, error) {
				kid, err := s.RotateKeys()
				return map[string]any{"current_kid": kid}, err
			},
		},
		"keys list": {
			usage: ": list the token signing keys",
			run: func(_ context.Context, s *auth.Store, _ *adminArgs) (any, error) {
				return s.SigningKeys().Keys(), nil
			},
		},
	}
}

func adminHelp() string {
	actions := adminActions()
	names := make([]string, 0, len(actions))
	for name := range actions {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: pulse admin NOUN VERB [options] [--json] [--clickhouse URL] [--data DIR]\n\n")
	for _, name := range names {
		fmt.Fprintf(&b, "  %-14s %s\n", name, actions[name].usage)
	}
	return b.String()
}

// admin runs one `pulse admin NOUN VERB` against the ClickHouse of --clickhouse.
func admin(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) < 2 || strings.HasPrefix(args[0], "-") || strings.HasPrefix(args[1], "-") {
		return usageError{adminHelp()}
	}
	name := args[0] + " " + args[1]
	action, ok := adminActions()[name]
	if !ok {
		return usageError{fmt.Sprintf("unknown admin action %q\n\n%s", name, adminHelp())}
	}
	var (
		o options
		a adminArgs
	)
	fs := newFlagSet("admin", &o)
	configFlags := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { configFlags[f.Name] = true })
	if action.flags != nil {
		action.flags(fs, &a)
	}
	if err := parseFlagsEnv(fs, args[2:], getenv, configFlags); err != nil {
		return err
	}
	if _, err := newLogger(io.Discard, o.logLevel, o.logFormat); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	db, _, _, err := openMigrated(ctx, o.clickhouse)
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := openStore(ctx, db, o, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	result, err := action.run(ctx, store, &a)
	if err != nil {
		if errors.Is(err, auth.ErrInvalid) {
			return usageError{err.Error()}
		}
		return err
	}
	if err := store.Flush(ctx); err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(stdout).Encode(result)
	}
	return printHuman(stdout, result)
}

func parseID(what, s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, usageError{fmt.Sprintf("the %s id is required", what)}
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, usageError{fmt.Sprintf("%q is not a valid %s id", s, what)}
	}
	return id, nil
}

func orgAndUser(s *auth.Store, a *adminArgs) (uuid.UUID, auth.User, error) {
	id, err := parseID("org", a.org)
	if err != nil {
		return uuid.Nil, auth.User{}, err
	}
	u, err := s.UserByEmail(a.email)
	return id, u, err
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// printHuman prints a result for people: a list as a table, an object as
// "field: value" lines. Both show the fields of the JSON form.
func printHuman(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var list []map[string]any
	if json.Unmarshal(raw, &list) == nil {
		if len(list) == 0 {
			_, err := fmt.Fprintln(w, "(none)")
			return err
		}
		keys := sortedKeys(list[0])
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(keys, "\t")))
		for _, row := range list {
			cells := make([]string, len(keys))
			for i, k := range keys {
				cells[i] = cell(row[k])
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		return tw.Flush()
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		_, err := fmt.Fprintln(w, string(raw))
		return err
	}
	for _, k := range sortedKeys(obj) {
		fmt.Fprintf(w, "%s: %s\n", k, cell(obj[k]))
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func cell(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		raw, _ := json.Marshal(v)
		return string(raw)
	}
}
