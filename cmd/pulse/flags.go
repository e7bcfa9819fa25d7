package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/internal/demo"
	"github.com/pulse-analytics/pulse/stream"
)

// options are every setting a subcommand reads from flags and PULSE_* variables.
type options struct {
	listen          string
	clickhouse      string
	data            string
	logLevel        string
	logFormat       string
	batchRows       int
	batchInterval   time.Duration
	shutdownTimeout time.Duration
	json            bool

	keyFile          string
	issuer           string
	dashboardOrigin  string
	allowSignup      bool
	geoIPDB          string
	dropBots         bool
	liveTick         time.Duration
	livePresence     time.Duration
	maxRetention     retentionDays
	demo             bool
	demoVisits       int
	trustedProxies   proxiesFlag
	addrEventsPerDay uint64
	addrConnections  int
}

// Defaults that differ between `serve` and `dev`.
const (
	defaultServeListen     = ":8080"
	defaultDevListen       = "127.0.0.1:8080"
	defaultServeClickHouse = "clickhouse://127.0.0.1:9000/pulse"
	defaultData            = "./.pulse"
	// defaultShutdownTimeout bounds waiting for in-flight HTTP requests at shutdown.
	defaultShutdownTimeout = 10 * time.Second
	// defaultDevTrustedProxies: `pulse dev` runs on a developer's machine,
	// where a reverse proxy in front of it is a local one.
	defaultDevTrustedProxies = "127.0.0.0/8,::1"
)

// subcommands lists the subcommands in the order of the help text and the README table.
func subcommands() []string { return []string{"serve", "dev", "migrate", "admin", "version"} }

// newFlagSet defines the flags of one subcommand on o, with that subcommand's defaults.
func newFlagSet(cmd string, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := cmd == "serve" || cmd == "dev"
	if server {
		listen := defaultServeListen
		if cmd == "dev" {
			listen = defaultDevListen
		}
		fs.StringVar(&o.listen, "listen", listen, "address the HTTP server listens on")
	}
	if server || cmd == "migrate" || cmd == "admin" {
		chDefault := defaultServeClickHouse
		if cmd == "dev" {
			chDefault = ""
		}
		fs.StringVar(&o.clickhouse, "clickhouse", chDefault, "ClickHouse to use, as clickhouse://user:password@host:port/database; empty (dev only) starts a managed clickhouse-server with its data under --data")
	}
	if server || cmd == "admin" {
		fs.StringVar(&o.data, "data", defaultData, "directory for Pulse's local state (the managed ClickHouse of dev, signing keys), mode 0700 (dev makes an existing one so)")
		fs.StringVar(&o.keyFile, "signing-keys", "", "JSON file of the Ed25519 keys that sign tokens (created when missing); empty: jwt-keys.json in --data")
		fs.StringVar(&o.issuer, "issuer", auth.DefaultIssuer, "the iss claim of every token Pulse signs and accepts; use the public base URL when several deployments share users")
	}
	if server {
		fs.IntVar(&o.batchRows, "batch-rows", ingest.DefaultBatchRows, "events per ClickHouse insert; the batcher flushes when it holds this many")
		fs.DurationVar(&o.batchInterval, "batch-interval", ingest.DefaultFlushInterval, "longest wait before buffered events are inserted")
		fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long shutdown waits for in-flight requests")
		fs.StringVar(&o.dashboardOrigin, "dashboard-origin", "", "the dashboard's public origin (https://analytics.example.com); state-changing API calls and the live stream must come from it; empty: the request's own host")
		fs.BoolVar(&o.allowSignup, "allow-signup", false, "let anyone sign up and create an organization (hosted service)")
		fs.DurationVar(&o.liveTick, "live-tick", stream.DefaultTick, "how often changed live state is pushed to dashboards")
		fs.DurationVar(&o.livePresence, "live-presence-timeout", stream.DefaultPresenceTimeout, "how long a silent tracker connection still counts as online; keep it above the ingest ping interval")
		fs.BoolVar(&o.dropBots, "drop-bots", false, "discard events from bots and crawlers instead of storing them flagged (is_bot = 1)")
		fs.StringVar(&o.geoIPDB, "geoip-db", "", "MaxMind-format database (.mmdb) for country, region and city; empty leaves them empty")
		if cmd == "dev" {
			o.trustedProxies.p, _ = auth.ParseProxies(defaultDevTrustedProxies)
		}
		fs.Var(&o.trustedProxies, "trusted-proxies", "reverse proxies whose X-Forwarded-For, Forwarded and X-Forwarded-Proto headers are believed, as comma-separated IP addresses and CIDR prefixes; requests from anyone else count as coming from their own address (docs/deploy.md)")
		fs.Uint64Var(&o.addrEventsPerDay, "address-events-per-day", auth.DefaultAddressEventsPerDay, "events one client address (IPv4 address or IPv6 /64) may send per tenant per UTC day on each node, so that one machine holding a site's public key cannot spend its monthly quota (docs/auth.md); 0: the default")
		fs.IntVar(&o.addrConnections, "address-connections", ingest.DefaultMaxConnectionsPerAddress, "tracker WebSocket connections one client address (IPv4 address or IPv6 /64) may hold open on each node, over all sites; raise it for visitors behind one large NAT (docs/auth.md); 0: the default")
		fs.Var(&o.maxRetention, "max-retention-days", "longest any site keeps events and visits, in days; sites that keep them forever or longer keep them this long; 0: no limit")
	}
	if cmd == "dev" {
		fs.BoolVar(&o.demo, "demo", false, "generate realistic traffic for the demo site: live visitors through the ingest WebSocket and 30 days of history (docs/demo.md)")
		fs.IntVar(&o.demoVisits, "demo-visits", demo.DefaultVisitsPerDay, "visits a day of --demo's traffic, live and in its history")
	}
	if cmd != "version" {
		fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
		fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	}
	if cmd == "migrate" || cmd == "version" || cmd == "admin" {
		fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	}
	return fs
}

// retentionDays is a flag's number of days, from 0 to auth.MaxRetentionDays.
type retentionDays uint32

func (d *retentionDays) String() string { return strconv.FormatUint(uint64(*d), 10) }

func (d *retentionDays) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > auth.MaxRetentionDays {
		return fmt.Errorf("want a number of days from 0 (no limit) to %d", auth.MaxRetentionDays)
	}
	*d = retentionDays(n)
	return nil
}

// proxiesFlag is a flag's list of trusted reverse proxies (auth.ParseProxies).
type proxiesFlag struct{ p auth.Proxies }

func (f *proxiesFlag) String() string { return f.p.String() }

func (f *proxiesFlag) Set(v string) error {
	p, err := auth.ParseProxies(v)
	if err != nil {
		return err
	}
	f.p = p
	return nil
}

// envName is the PULSE_* twin of a flag: --batch-rows is PULSE_BATCH_ROWS.
func envName(flagName string) string {
	return "PULSE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// usageError is a mistake in the command line or environment (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// parseFlags parses args, then fills every flag not given on the command line
// from its PULSE_* variable when that is set.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	return parseFlagsEnv(fs, args, getenv, nil)
}

// parseFlagsEnv is parseFlags where only the flags in withEnv (all when nil)
// have PULSE_* twins.
func parseFlagsEnv(fs *flag.FlagSet, args []string, getenv func(string) string, withEnv map[string]bool) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return usageError{fmt.Sprintf("usage of pulse %s:\n%s", fs.Name(), flagHelp(fs))}
		}
		return usageError{fmt.Sprintf("%s: %v (see pulse %s -h)", fs.Name(), err, fs.Name())}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if err != nil || given[f.Name] || v == "" || withEnv != nil && !withEnv[f.Name] {
			return
		}
		if setErr := f.Value.Set(v); setErr != nil {
			err = usageError{fmt.Sprintf("%s=%q: %v", envName(f.Name), v, setErr)}
		}
	})
	return err
}

// flagHelp lists a flag set's flags with their variables and defaults.
func flagHelp(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(&b, "  --%s (%s, default %q)\n      %s\n", f.Name, envName(f.Name), f.DefValue, f.Usage)
	})
	return b.String()
}

// configTable renders every flag of every subcommand as the Markdown table of
// README.md's configuration section.
func configTable() string {
	type row struct {
		name, usage string
		cmds        []string
		defaults    []string
	}
	var rows []*row
	byName := map[string]*row{}
	for _, cmd := range subcommands() {
		fs := newFlagSet(cmd, &options{})
		fs.VisitAll(func(f *flag.Flag) {
			r, ok := byName[f.Name]
			if !ok {
				r = &row{name: f.Name, usage: f.Usage}
				byName[f.Name] = r
				rows = append(rows, r)
			}
			r.cmds = append(r.cmds, cmd)
			r.defaults = append(r.defaults, f.DefValue)
		})
	}
	var b strings.Builder
	b.WriteString("| Flag | Environment | Default | Commands | Meaning |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		def := "`" + r.defaults[0] + "`"
		for i := 1; i < len(r.defaults); i++ {
			if r.defaults[i] != r.defaults[0] {
				var parts []string
				for j, c := range r.cmds {
					d := "`" + r.defaults[j] + "`"
					if r.defaults[j] == "" {
						d = "(empty)"
					}
					parts = append(parts, c+": "+d)
				}
				def = strings.Join(parts, "<br>")
				break
			}
		}
		if r.defaults[0] == "" && !strings.Contains(def, "<br>") {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s | %s |\n", r.name, envName(r.name), def, strings.Join(r.cmds, ", "), r.usage)
	}
	return b.String()
}
