package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Role is a member's role in one organization.
type Role string

// Roles, from least to most powerful.
const (
	RoleViewer Role = "viewer" // reads the org's sites and data
	RoleAdmin  Role = "admin"  // also changes sites, members, keys and share links
	RoleOwner  Role = "owner"  // also deletes the org and manages owners
)

// rank orders roles; 0 means not a valid role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleAdmin:
		return 2
	case RoleOwner:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r grants everything need grants.
func (r Role) AtLeast(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// Scope is one permission of an API key.
type Scope string

// API key scopes.
const (
	ScopeIngest Scope = "ingest" // send events for the org's sites
	ScopeRead   Scope = "read"   // query the org's data (like a viewer)
	ScopeAdmin  Scope = "admin"  // manage the org (like an admin)
)

// Valid reports whether s is one of the defined scopes.
func (s Scope) Valid() bool { return s == ScopeIngest || s == ScopeRead || s == ScopeAdmin }

// Org is an organization: one tenant.
type Org struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	Quota     Quota     `json:"quota"` // zero fields use Config.DefaultQuota
	CreatedAt time.Time `json:"created_at"`
}

// Quota is what one tenant may use.
type Quota struct {
	// EventsPerSecond is the sustained event rate per node (token bucket with
	// one second of burst).
	EventsPerSecond uint32 `json:"events_per_second"`
	// EventsPerMonth is the number of accepted events per calendar month (UTC)
	// across all nodes, as far as they have flushed their counts.
	EventsPerMonth uint64 `json:"events_per_month"`
	// MaxConnections is the number of concurrent ingest WebSocket connections
	// per node (live subscribers are bounded by the live hub).
	MaxConnections uint32 `json:"max_connections"`
}

// Site is one tracked web site of an org.
type Site struct {
	ID    uuid.UUID `json:"id"`
	OrgID uuid.UUID `json:"org_id"`
	// Domain is the normalized domain, unique among live sites.
	Domain string `json:"domain"`
	// PublicKey is the public site key (pk_…) the tracker puts in the ingest URL.
	PublicKey string `json:"public_key"`
	// AllowedOrigins are the exact origins (scheme://host[:port]) that may
	// open the ingest WebSocket with PublicKey.
	AllowedOrigins []string `json:"allowed_origins"`
	// TimeZone is an IANA time zone name for the site's reports.
	TimeZone string `json:"time_zone"`
	// HonorDNT drops events of browsers that send Do Not Track (DNT: 1).
	// Global Privacy Control is always honoured.
	HonorDNT bool `json:"honor_dnt"`
	// RetentionDays is how many whole days (in TimeZone) before today the
	// site's events and visits are kept; older ones are deleted by the
	// lifecycle job. 0 keeps them forever (or as long as the operator's
	// --max-retention-days allows).
	RetentionDays uint32 `json:"retention_days"`
	// IdentitySecret is the HS256 secret the site's backend signs identity
	// tokens with. Shown to admins only.
	IdentitySecret string    `json:"-"`
	CreatedAt      time.Time `json:"created_at"`
	generation     uint32
}

// User is a person who logs in to the dashboard.
type User struct {
	ID    uuid.UUID `json:"id"`
	Email string    `json:"email"`
	Name  string    `json:"name"`
	// Operator users administer every tenant of the hosted service.
	Operator bool `json:"operator"`
	// TokensValidAfter refuses session tokens issued before it (logout
	// everywhere, password change).
	TokensValidAfter time.Time `json:"-"`
	CreatedAt        time.Time `json:"created_at"`
	passwordHash     string
	generation       uint32
}

// Member is a user's role in one org.
type Member struct {
	OrgID     uuid.UUID `json:"org_id"`
	UserID    uuid.UUID `json:"user_id"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// APIKey describes a secret API key. The secret itself is returned once, by
// CreateAPIKey, and only its SHA-256 is stored.
type APIKey struct {
	ID    uuid.UUID `json:"id"`
	OrgID uuid.UUID `json:"org_id"`
	Name  string    `json:"name"`
	// Prefix is the visible start of the secret (sk_ and 8 characters).
	Prefix    string    `json:"prefix"`
	Scopes    []Scope   `json:"scopes"`
	CreatedBy uuid.UUID `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is zero when the key was never used (resolution one minute).
	LastUsedAt time.Time `json:"last_used_at"`
	secretHash string
}

// HasScope reports whether the key carries s.
func (k APIKey) HasScope(s Scope) bool {
	for _, have := range k.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// ShareLink is a read-only link to one site's dashboard.
type ShareLink struct {
	ID        uuid.UUID `json:"id"`
	OrgID     uuid.UUID `json:"org_id"`
	SiteID    uuid.UUID `json:"site_id"`
	Name      string    `json:"name"`
	CreatedBy uuid.UUID `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
}

// Invite invites an email address into an org with a role.
type Invite struct {
	ID        uuid.UUID `json:"id"`
	OrgID     uuid.UUID `json:"org_id"`
	Email     string    `json:"email"`
	Role      Role      `json:"role"`
	CreatedBy uuid.UUID `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
	tokenHash string
}

// Errors callers tell apart with errors.Is.
var (
	ErrNotFound       = errors.New("not found")
	ErrExists         = errors.New("already exists")
	ErrForbidden      = errors.New("forbidden")
	ErrUnauthorized   = errors.New("not authenticated")
	ErrBadCredentials = errors.New("wrong email or password")
	ErrSignupDisabled = errors.New("self-serve signup is turned off")
	ErrInvalid        = errors.New("invalid input")
	ErrLastOwner      = errors.New("an org needs at least one owner")
)

// RateLimitError says a login was refused by a rate limit and when to retry.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many login attempts: retry in %s", e.RetryAfter.Round(time.Second))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
