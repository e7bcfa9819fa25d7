package enrich

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/pulse-analytics/pulse/internal/chdb"
)

// DefaultAgentCacheSize bounds the parsed User-Agent headers kept in memory
// (a few hundred bytes each); when full, the cache starts over.
const DefaultAgentCacheSize = 10_000

// Config configures an Enricher. Zero fields take the defaults.
type Config struct {
	// GeoIPPath is a MaxMind-format database; empty leaves geography empty.
	GeoIPPath string
	// SessionTimeout ends a visit after this long without events. Default DefaultSessionTimeout.
	SessionTimeout time.Duration
	// MaxSessions bounds the visits tracked at once. Default DefaultMaxSessions.
	MaxSessions int
	// AgentCacheSize bounds the parsed User-Agent cache. Default DefaultAgentCacheSize.
	AgentCacheSize int
	// Logger receives salt rotation failures. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() {
	if c.AgentCacheSize <= 0 {
		c.AgentCacheSize = DefaultAgentCacheSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Enricher holds the state enrichment needs: the geography database, the
// daily salts, open visits and parsed user agents.
type Enricher struct {
	geo      *GeoDB
	salts    *Salts
	sessions *Sessions

	agentsMu  sync.Mutex
	agents    map[string]Agent
	maxAgents int
}

// New opens the geography database (if configured) and loads today's salt.
func New(ctx context.Context, db *chdb.DB, cfg Config) (*Enricher, error) {
	cfg.withDefaults()
	e := &Enricher{
		salts:     NewSalts(db, cfg.Logger),
		sessions:  NewSessions(cfg.SessionTimeout, cfg.MaxSessions),
		agents:    map[string]Agent{},
		maxAgents: cfg.AgentCacheSize,
	}
	if cfg.GeoIPPath != "" {
		geo, err := OpenGeoDB(cfg.GeoIPPath)
		if err != nil {
			return nil, err
		}
		e.geo = geo
	}
	if err := e.salts.Load(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Run rotates salts and forgets ended visits until ctx ends.
func (e *Enricher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return e.salts.Run(ctx) })
	g.Go(func() error { return e.sessions.Run(ctx) })
	return g.Wait()
}

// Close releases the geography database.
func (e *Enricher) Close() error {
	if e.geo != nil {
		return e.geo.Close()
	}
	return nil
}

// Client is what one connection or request says about its visitor. The IP
// address is used here and dropped: only the derived fields are kept.
type Client struct {
	Agent
	Location
	// VisitorID is 0 when the day's salt is not loaded yet (counted as unknown).
	VisitorID uint64
}

// Client derives the visitor's software, place and anonymous id for site at t.
func (e *Enricher) Client(site uuid.UUID, ip netip.Addr, userAgent string, at time.Time) Client {
	c := Client{Agent: e.agent(userAgent), Location: e.geo.Lookup(ip)}
	c.VisitorID, _ = e.salts.VisitorID(at, site, ip, userAgent)
	return c
}

// ServerClient derives what a server-side message says of its visitor: the
// software when a user agent is given (nothing, and no bot flag, otherwise),
// and a visitor id keyed by the sender's anonymous or user id instead of an
// address. The id still changes daily with the salt.
func (e *Enricher) ServerClient(site uuid.UUID, visitorKey, userAgent string, at time.Time) Client {
	var c Client
	if userAgent != "" {
		c.Agent = e.agent(userAgent)
	}
	if visitorKey != "" {
		c.VisitorID, _ = e.salts.VisitorID(at, site, netip.Addr{}, "key:"+visitorKey)
	}
	return c
}

// Session returns the session id of visitor's event at t.
func (e *Enricher) Session(site uuid.UUID, visitor uint64, at time.Time) uint64 {
	return e.sessions.Touch(site, visitor, at)
}

func (e *Enricher) agent(header string) Agent {
	e.agentsMu.Lock()
	a, ok := e.agents[header]
	e.agentsMu.Unlock()
	if ok {
		return a
	}
	// The header may point into a request buffer the HTTP server reuses
	// (Fiber's strings are not immutable): the cache keeps a copy, and the
	// agent's strings are parsed from that copy.
	header = strings.Clone(header)
	a = ParseUserAgent(header)
	e.agentsMu.Lock()
	if len(e.agents) >= e.maxAgents {
		clear(e.agents)
	}
	e.agents[header] = a
	e.agentsMu.Unlock()
	return a
}
