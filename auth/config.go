package auth

import (
	"log/slog"
	"path/filepath"
	"time"
)

// Config configures a Store. cmd/pulse fills it from flags and environment.
type Config struct {
	// DataDir is the directory the signing key set is generated into on first
	// start when KeyFile is empty.
	DataDir string
	// KeyFile is the JSON key set of Ed25519 signing keys (mode 0600). Empty
	// means DataDir/DefaultKeyFileName. It is created when missing.
	KeyFile string
	// Issuer is the `iss` of every token this service signs and requires; use
	// the public base URL in production. Default DefaultIssuer.
	Issuer string
	// DashboardOrigin is the dashboard's own origin (scheme://host[:port]),
	// the only origin allowed for state-changing requests made with the
	// session cookie and for the live stream. Empty: the request's own
	// scheme and host.
	DashboardOrigin string
	// AllowSignup turns on self-serve signup (off by default; the operator
	// turns it on for the hosted service).
	AllowSignup bool
	// SessionCookie is the session cookie's name. Default DefaultSessionCookie.
	SessionCookie string

	// RefreshInterval is how often metadata is re-read from ClickHouse.
	// Default DefaultRefreshInterval.
	RefreshInterval time.Duration
	// UsageFlushInterval is how often usage counts are written. Default DefaultUsageFlushInterval.
	UsageFlushInterval time.Duration
	// KeyReloadInterval is how often KeyFile is checked for rotation. Default DefaultKeyReloadInterval.
	KeyReloadInterval time.Duration

	// SessionLifetime bounds dashboard session tokens. Default DefaultSessionLifetime.
	SessionLifetime time.Duration
	// ResumeLifetime bounds ingest resume tokens. Default DefaultResumeLifetime.
	ResumeLifetime time.Duration
	// InviteLifetime bounds invitations. Default DefaultInviteLifetime.
	InviteLifetime time.Duration
	// Leeway is the clock skew tolerated when verifying tokens. Default DefaultLeeway.
	Leeway time.Duration

	// Password sets the argon2id cost of new password hashes. Zero fields
	// take DefaultPasswordTime, DefaultPasswordMemoryKiB, DefaultPasswordThreads.
	Password PasswordParams
	// LoginWindow, LoginAttemptsPerAccount and LoginAttemptsPerIP set the
	// login rate limits. Defaults DefaultLoginWindow, DefaultLoginAttemptsPerAccount,
	// DefaultLoginAttemptsPerIP.
	LoginWindow             time.Duration
	LoginAttemptsPerAccount int
	LoginAttemptsPerIP      int

	// DefaultQuota applies to orgs whose own quota fields are zero. Zero fields
	// take DefaultEventsPerSecond, DefaultEventsPerMonth, DefaultMaxConnections.
	DefaultQuota Quota
	// AddressEventsPerDay is the events one client address (IPv4 address or
	// IPv6 /64) may send per tenant per UTC day on this node, whatever the
	// tenant's quota. Default DefaultAddressEventsPerDay.
	AddressEventsPerDay uint64

	// Logger receives refresh and flush failures. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() {
	if c.KeyFile == "" && c.DataDir != "" {
		c.KeyFile = filepath.Join(c.DataDir, DefaultKeyFileName)
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.SessionCookie == "" {
		c.SessionCookie = DefaultSessionCookie
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&c.RefreshInterval, DefaultRefreshInterval)
	setDur(&c.UsageFlushInterval, DefaultUsageFlushInterval)
	setDur(&c.KeyReloadInterval, DefaultKeyReloadInterval)
	setDur(&c.SessionLifetime, DefaultSessionLifetime)
	setDur(&c.ResumeLifetime, DefaultResumeLifetime)
	setDur(&c.InviteLifetime, DefaultInviteLifetime)
	setDur(&c.Leeway, DefaultLeeway)
	setDur(&c.LoginWindow, DefaultLoginWindow)
	c.Password.withDefaults()
	if c.LoginAttemptsPerAccount <= 0 {
		c.LoginAttemptsPerAccount = DefaultLoginAttemptsPerAccount
	}
	if c.LoginAttemptsPerIP <= 0 {
		c.LoginAttemptsPerIP = DefaultLoginAttemptsPerIP
	}
	if c.DefaultQuota.EventsPerSecond == 0 {
		c.DefaultQuota.EventsPerSecond = DefaultEventsPerSecond
	}
	if c.DefaultQuota.EventsPerMonth == 0 {
		c.DefaultQuota.EventsPerMonth = DefaultEventsPerMonth
	}
	if c.DefaultQuota.MaxConnections == 0 {
		c.DefaultQuota.MaxConnections = DefaultMaxConnections
	}
	if c.AddressEventsPerDay == 0 {
		c.AddressEventsPerDay = DefaultAddressEventsPerDay
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
