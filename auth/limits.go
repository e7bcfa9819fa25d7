package auth

import "time"

// Defaults and limits of package auth. Config fields left zero take these values.
const (
	// DefaultRefreshInterval is how often a Store re-reads all metadata from
	// ClickHouse; a revoked key or removed member stops working on every node
	// within this interval.
	DefaultRefreshInterval = 2 * time.Second
	// DefaultUsageFlushInterval is how often counted usage is written to ClickHouse.
	DefaultUsageFlushInterval = 10 * time.Second
	// DefaultKeyReloadInterval is how often the signing key file is checked for
	// a rotation made by another process (`pulse admin keys rotate`).
	DefaultKeyReloadInterval = 10 * time.Second
	// DefaultIssuer is the JWT `iss` of tokens this service signs.
	DefaultIssuer = "pulse"
	// DefaultKeyFileName is the key set's file name inside the data directory.
	DefaultKeyFileName = "jwt-keys.json"

	// DefaultSessionLifetime bounds a dashboard session token.
	DefaultSessionLifetime = 12 * time.Hour
	// DefaultResumeLifetime bounds an ingest resume token.
	DefaultResumeLifetime = 30 * time.Minute
	// DefaultShareLinkLifetime is a share link's lifetime when none is asked for.
	DefaultShareLinkLifetime = 30 * 24 * time.Hour
	// MaxShareLinkLifetime is the longest lifetime a share link may have.
	MaxShareLinkLifetime = 365 * 24 * time.Hour
	// MaxIdentityLifetime is the longest lifetime (exp - iat, or exp - now) an
	// identity token signed by a customer's backend may have.
	MaxIdentityLifetime = 24 * time.Hour
	// DefaultInviteLifetime bounds an invitation token.
	DefaultInviteLifetime = 7 * 24 * time.Hour
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// MaxTokenLength refuses longer tokens before any parsing (the parser of
	// golang-jwt allocates per dot; CVE-2025-30204).
	MaxTokenLength = 4096

	// DefaultLoginWindow is the window of the login rate limits (starting at
	// a key's first attempt), and how long failures are remembered.
	DefaultLoginWindow = 15 * time.Minute
	// DefaultLoginAttemptsPerAccount is the number of failed login attempts
	// per account (normalized email) per window from addresses the account
	// has not logged in from (see LoginKnownAddressLifetime).
	DefaultLoginAttemptsPerAccount = 10
	// DefaultLoginAttemptsPerIP is the number of failed login attempts per
	// client address (IPv4 address or IPv6 /64) per window, across accounts.
	DefaultLoginAttemptsPerIP = 50
	// MaxLimiterEntries caps the keys each table of the login limiter holds
	// (about 100 bytes each); when full, the least recently used key is
	// forgotten, so a flood of addresses never refuses a fresh client.
	MaxLimiterEntries = 100_000

	// DefaultEventsPerSecond is a tenant's event rate when its org sets none.
	DefaultEventsPerSecond = 1_000
	// DefaultEventsPerMonth is a tenant's monthly events when its org sets none.
	DefaultEventsPerMonth = 10_000_000
	// DefaultMaxConnections is a tenant's concurrent ingest (tracker)
	// connections per node when its org sets none. Live subscribers have a
	// budget of their own (stream.DefaultMaxSubscribersPerTenant).
	DefaultMaxConnections = 10_000
	// CloseQuotaExceeded is the WebSocket close code sent when a tenant is over
	// quota (the 4000–4999 range of docs/protocol.md); the reason carries the
	// number of seconds to wait.
	CloseQuotaExceeded = 4429

	// DefaultSessionCookie is the name of the dashboard session cookie.
	DefaultSessionCookie = "pulse_session"
	// DefaultPasswordTime, DefaultPasswordMemoryKiB and DefaultPasswordThreads
	// are the argon2id parameters of RFC 9106 section 4's second recommended
	// option (t=3, m=64 MiB, p=4): about 50–150 ms per hash on a server core.
	DefaultPasswordTime      = 3
	DefaultPasswordMemoryKiB = 64 * 1024
	DefaultPasswordThreads   = 4
	// MinPasswordLength is the shortest password accepted.
	MinPasswordLength = 10
	// MaxPasswordLength bounds the input to the password hash.
	MaxPasswordLength = 1024
	// maxConcurrentHashes bounds concurrent argon2id computations, each of
	// which holds PasswordParams.MemoryKiB of memory.
	maxConcurrentHashes = 4
	// createSettle is how long a create waits after its insert before reading
	// back which concurrent create won (see Store.claim).
	createSettle = 150 * time.Millisecond
	// lastUsedResolution is how stale a key's recorded last-used time may get.
	lastUsedResolution = time.Minute
	// queryTimeout bounds one metadata read or write to ClickHouse.
	queryTimeout = 10 * time.Second
)

// Limits on names and lists supplied by users.
const (
	maxEmailLength   = 254
	maxDomainLength  = 253
	maxNameLength    = 200
	maxOrigins       = 50
	maxOriginLength  = 300
	defaultTimeZone  = "UTC"
	maxTimeZoneBytes = 64
)

// MaxRetentionDays is the longest retention a site may set (ten years);
// 0 keeps data forever.
const MaxRetentionDays = 3650

// Retry hints and password hash sizes.
const (
	// connectionRetryAfter is the Retry-After of a refused connection.
	connectionRetryAfter = 5 * time.Second
	// saltLen and hashLen are the argon2id salt and output lengths in bytes.
	saltLen = 16
	hashLen = 32
	// maxStoredMemoryKiB refuses stored hashes asking for absurd memory (1 GiB).
	maxStoredMemoryKiB = 1 << 20
)

// codeUnknownTable is ClickHouse's error code for a missing table.
const codeUnknownTable int32 = 60

// Login backoff per account and client address (loginLimiter).
const (
	// LoginFreeFailures is the number of failed logins of one account from
	// one address (IPv4 address or IPv6 /64) before each further failure
	// makes that address wait; typos cost nothing.
	LoginFreeFailures = 3
	// LoginBackoffBase is the wait after the LoginFreeFailures-th failure; it
	// doubles with each further failure.
	LoginBackoffBase = time.Second
	// LoginMaxBackoff caps that wait (reached at the 13th failure in a row).
	LoginMaxBackoff = 15 * time.Minute
	// LoginKnownAddressLifetime is how long an address (IPv4 address or IPv6
	// /64) an account logged in from stays known to this node: failures of
	// the account from other addresses do not hold it back.
	LoginKnownAddressLifetime = 30 * 24 * time.Hour
)

// The per-address event budget (Store.AllowEvents): a site's public key is in
// every page that carries the tracker, so anyone may send events for it, and
// one machine could otherwise spend its tenant's monthly quota in hours.
const (
	// DefaultAddressEventsPerDay is the events one client address (IPv4
	// address or IPv6 /64) may send per tenant per UTC day on a node: a single
	// source spends at most 1 % of DefaultEventsPerMonth a day, while an
	// office or carrier NAT of about 1,000 visitors at about 100 events a day
	// each still fits.
	DefaultAddressEventsPerDay = 100_000
	// MaxAddressBudgets caps the (tenant, client address) pairs a node counts
	// the day's events of (about 170 bytes each, 16 MiB when full); when full, the least recently used pair is
	// forgotten, so a flood of addresses costs bounded memory and never
	// refuses a fresh client.
	MaxAddressBudgets = 100_000
)
