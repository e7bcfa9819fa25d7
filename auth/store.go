package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb"
)

// Store is the tenancy and authentication state of one node: every org, site,
// user, membership, API key, share link and invite, read from ClickHouse into
// memory and refreshed every Config.RefreshInterval by Run. Writes go to
// ClickHouse first and then into this node's memory; other nodes see them
// after their next refresh.
//
// Storage has no transactions and no unique constraints. Rows are versioned
// (ReplacingMergeTree(version)), deletes are tombstones, and the newest
// version wins, with one exception that makes "create" exclusive: users and
// sites get ids derived from their normalized email or domain, and create
// rows get versions that count down with time, so when two nodes create the
// same email at once they write the same id and the earliest create wins
// in storage and in every reader. A create waits createSettle after its
// insert, reads the id back and reports ErrExists when another create won.
// Updates and tombstones always outrank creates.
type Store struct {
	db     *chdb.DB
	cfg    Config
	log    *slog.Logger
	keys   *KeySet
	tok    *tokens
	hasher *hasher
	logins *loginLimiter
	quotas *quotas

	mu  sync.RWMutex
	t   *tables
	idx *index
	// lastUsed is the newest known use per API key; lastUsedDirty lists the
	// uses not yet written.
	lastUsed      map[uuid.UUID]time.Time
	lastUsedDirty map[uuid.UUID]time.Time
	// revoked holds the ids of logged-out session tokens not yet expired,
	// with their expiry.
	revoked map[string]time.Time

	verMu      sync.Mutex
	lastUpdate uint64
}

// Open builds a Store on db, loads or creates the signing key set, and reads
// all metadata once. Call Run to keep it fresh.
func Open(ctx context.Context, db *chdb.DB, cfg Config) (*Store, error) {
	cfg.withDefaults()
	keys, err := LoadKeySet(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db: db, cfg: cfg, log: cfg.Logger, keys: keys,
		tok:      &tokens{keys: keys, issuer: cfg.Issuer, leeway: cfg.Leeway},
		hasher:   newHasher(cfg.Password),
		logins:   newLoginLimiter(cfg.LoginWindow, cfg.LoginAttemptsPerAccount, cfg.LoginAttemptsPerIP),
		quotas:   newQuotas(cfg.AddressEventsPerDay),
		t:        newTables(),
		lastUsed: map[uuid.UUID]time.Time{}, lastUsedDirty: map[uuid.UUID]time.Time{},
		revoked: map[string]time.Time{},
	}
	s.idx = buildIndex(s.t)
	if err := s.Refresh(ctx); err != nil {
		if chdb.IsCode(err, codeUnknownTable) {
			return nil, fmt.Errorf("%w (run `pulse migrate` to create the auth tables)", err)
		}
		return nil, err
	}
	return s, nil
}

// SigningKeys returns the signing key set (for `pulse admin keys list`).
func (s *Store) SigningKeys() *KeySet { return s.keys }

// RotateKeys adds a new current signing key; tokens signed with older keys
// keep verifying until they expire.
func (s *Store) RotateKeys() (string, error) {
	return s.keys.Rotate(time.Now(), MaxShareLinkLifetime+s.cfg.Leeway)
}

// Run refreshes metadata every RefreshInterval, writes usage and key last-use
// times every UsageFlushInterval and reloads the key file every
// KeyReloadInterval, until ctx ends; then it writes what is left, with its
// own time budget, and returns nil.
func (s *Store) Run(ctx context.Context) error {
	refresh := time.NewTicker(s.cfg.RefreshInterval)
	defer refresh.Stop()
	flush := time.NewTicker(s.cfg.UsageFlushInterval)
	defer flush.Stop()
	reload := time.NewTicker(s.cfg.KeyReloadInterval)
	defer reload.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := s.Flush(final); err != nil {
				s.log.Error("auth: final flush", "err", err)
			}
			return nil
		case <-refresh.C:
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("auth: refresh metadata", "err", err)
			}
		case <-flush.C:
			if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("auth: flush usage", "err", err)
			}
		case <-reload.C:
			if changed, err := s.keys.Reload(); err != nil {
				s.log.Error("auth: reload signing keys", "err", err)
			} else if changed {
				s.log.Info("auth: signing keys reloaded", "current_kid", s.keys.current().kid)
			}
		}
	}
}

// Refresh reads every metadata table and merges it into memory. On error the
// previous state stays in use.
func (s *Store) Refresh(ctx context.Context) error {
	fresh := newTables()
	var err error
	if fresh.orgs, err = load(ctx, s.db, orgsTable(), ""); err != nil {
		return err
	}
	if fresh.sites, err = load(ctx, s.db, sitesTable(), ""); err != nil {
		return err
	}
	if fresh.users, err = load(ctx, s.db, usersTable(), ""); err != nil {
		return err
	}
	if fresh.members, err = load(ctx, s.db, membersTable(), ""); err != nil {
		return err
	}
	if fresh.keys, err = load(ctx, s.db, keysTable(), ""); err != nil {
		return err
	}
	if fresh.shares, err = load(ctx, s.db, sharesTable(), ""); err != nil {
		return err
	}
	if fresh.invites, err = load(ctx, s.db, invitesTable(), ""); err != nil {
		return err
	}
	used, err := s.loadLastUsed(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	revoked, err := s.loadRevokedSessions(ctx, now)
	if err != nil {
		return err
	}
	s.mu.Lock()
	mergeAll(s.t, fresh)
	s.mergeRevoked(revoked, now)
	for id, t := range used {
		if t.After(s.lastUsed[id]) {
			s.lastUsed[id] = t
		}
	}
	s.idx = buildIndex(s.t)
	s.mu.Unlock()
	return s.refreshMonth(ctx)
}

// mergeAll merges every row of src into dst, newest version winning.
func mergeAll(dst, src *tables) {
	mergeInto(dst.orgs, src.orgs)
	mergeInto(dst.sites, src.sites)
	mergeInto(dst.users, src.users)
	mergeInto(dst.members, src.members)
	mergeInto(dst.keys, src.keys)
	mergeInto(dst.shares, src.shares)
	mergeInto(dst.invites, src.invites)
}

func mergeInto[K comparable, T any](dst, src map[K]versioned[T]) {
	for k, v := range src {
		put(dst, k, v)
	}
}

// write inserts rows of t into ClickHouse and then into memory.
func write[K comparable, T any](ctx context.Context, s *Store, t table[K, T], rows ...versioned[T]) error {
	if err := insert(ctx, s.db, t, rows...); err != nil {
		return err
	}
	remember(s, t, rows...)
	return nil
}

// remember merges rows of t into memory.
func remember[K comparable, T any](s *Store, t table[K, T], rows ...versioned[T]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := t.mem(s.t)
	for _, r := range rows {
		put(m, t.key(r.row), r)
	}
	s.idx = buildIndex(s.t)
}

// Version layout (UInt64): updates are 1<<62 | ms<<20 | random20, creates are
// createTop - (ms<<20 | random20), so every update outranks every create and
// among creates the earliest wins. ms counts milliseconds since versionEpochMs
// (41 bits last until 2093); the random bits make concurrent versions distinct.
const (
	updateFlag     = uint64(1) << 62
	createTop      = uint64(1)<<61 - 1
	versionEpochMs = 1704067200000 // 2024-01-01T00:00:00Z
)

func versionStamp(now time.Time) uint64 {
	ms := uint64(now.UnixMilli() - versionEpochMs)
	return ms<<20 | uint64(rand.Uint32()&(1<<20-1))
}

// createVersion is the version of a row that creates a record.
func createVersion(now time.Time) uint64 { return createTop - versionStamp(now) }

// updateVersion is the version of a row that changes or deletes a record;
// on one node it always grows.
func (s *Store) updateVersion() uint64 {
	v := updateFlag | versionStamp(time.Now())
	s.verMu.Lock()
	defer s.verMu.Unlock()
	if v <= s.lastUpdate {
		v = s.lastUpdate + 1
	}
	s.lastUpdate = v
	return v
}

// naturalID derives the id of generation gen of the record whose unique
// natural key (normalized email or domain) is key.
func naturalID(kind, key string, gen uint32) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "pulse:%s:%d:%s", kind, gen, key))
}

// claim creates the record with natural key (column keyCol = key) exclusively:
// it refuses when a live record exists, derives the id of the next
// generation, writes build(id, gen) with a create version, waits createSettle
// and reads the id back; when another concurrent create won it returns ErrExists.
func claim[T any](ctx context.Context, s *Store, t table[uuid.UUID, T], kind, keyCol, key string,
	genOf func(T) uint32, build func(id uuid.UUID, gen uint32) T) (T, error) {
	var zero T
	existing, err := load(ctx, s.db, t, keyCol+" = ?", key)
	if err != nil {
		return zero, err
	}
	var gen uint32
	for _, v := range existing {
		if !v.deleted {
			remember(s, t, v)
			return zero, fmt.Errorf("auth: create %s %s: %w", kind, key, ErrExists)
		}
		gen = max(gen, genOf(v.row))
	}
	gen++
	id := naturalID(kind, key, gen)
	var mine versioned[T]
	if err := insertLate(ctx, s.db, t, func() []versioned[T] {
		mine = versioned[T]{row: build(id, gen), version: createVersion(time.Now())}
		return []versioned[T]{mine}
	}); err != nil {
		return zero, err
	}
	select {
	case <-time.After(createSettle):
	case <-ctx.Done():
		return zero, fmt.Errorf("auth: create %s %s: %w", kind, key, ctx.Err())
	}
	back, err := load(ctx, s.db, t, "id = ?", id)
	if err != nil {
		return zero, err
	}
	winner, ok := back[id]
	if !ok {
		return zero, fmt.Errorf("auth: create %s %s: the row written is not readable", kind, key)
	}
	remember(s, t, winner)
	if winner.version != mine.version {
		return zero, fmt.Errorf("auth: create %s %s: %w", kind, key, ErrExists)
	}
	return mine.row, nil
}

// index holds the lookups derived from the live rows of tables.
type index struct {
	sitesByKey    map[string]Site
	sitesByDomain map[string]Site
	sitesByOrg    map[uuid.UUID][]Site
	usersByEmail  map[string]User
	membersByOrg  map[uuid.UUID][]Member
	membersByUser map[uuid.UUID][]Member
	keysByHash    map[string]APIKey
	invitesByHash map[string]Invite
}

// buildIndex derives the lookups; rows of deleted orgs count as deleted.
func buildIndex(t *tables) *index {
	ix := &index{
		sitesByKey: map[string]Site{}, sitesByDomain: map[string]Site{}, sitesByOrg: map[uuid.UUID][]Site{},
		usersByEmail: map[string]User{}, membersByOrg: map[uuid.UUID][]Member{}, membersByUser: map[uuid.UUID][]Member{},
		keysByHash: map[string]APIKey{}, invitesByHash: map[string]Invite{},
	}
	liveOrg := func(id uuid.UUID) bool { o, ok := t.orgs[id]; return ok && !o.deleted }
	for _, v := range t.sites {
		if v.deleted || !liveOrg(v.row.OrgID) {
			continue
		}
		ix.sitesByKey[v.row.PublicKey] = v.row
		ix.sitesByDomain[v.row.Domain] = v.row
		ix.sitesByOrg[v.row.OrgID] = append(ix.sitesByOrg[v.row.OrgID], v.row)
	}
	for _, sites := range ix.sitesByOrg {
		sort.Slice(sites, func(i, j int) bool { return sites[i].Domain < sites[j].Domain })
	}
	for _, v := range t.users {
		if !v.deleted {
			ix.usersByEmail[v.row.Email] = v.row
		}
	}
	for _, v := range t.members {
		u, ok := t.users[v.row.UserID]
		if v.deleted || !liveOrg(v.row.OrgID) || !ok || u.deleted {
			continue
		}
		ix.membersByOrg[v.row.OrgID] = append(ix.membersByOrg[v.row.OrgID], v.row)
		ix.membersByUser[v.row.UserID] = append(ix.membersByUser[v.row.UserID], v.row)
	}
	// Members and memberships in the order they were made (ties, in the
	// same second, by id), not in the map's order: the lists read the same
	// on every call, and a user's first org is the same on every start.
	for _, ms := range ix.membersByOrg {
		slices.SortFunc(ms, func(a, b Member) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.UserID.String(), b.UserID.String()))
		})
	}
	for _, ms := range ix.membersByUser {
		slices.SortFunc(ms, func(a, b Member) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.OrgID.String(), b.OrgID.String()))
		})
	}
	for _, v := range t.keys {
		if !v.deleted && liveOrg(v.row.OrgID) {
			ix.keysByHash[v.row.secretHash] = v.row
		}
	}
	for _, v := range t.invites {
		if !v.deleted && liveOrg(v.row.OrgID) {
			ix.invitesByHash[v.row.tokenHash] = v.row
		}
	}
	return ix
}

// liveRow returns the live row of id in m.
func liveRow[T any](m map[uuid.UUID]versioned[T], id uuid.UUID) (T, bool) {
	v, ok := m[id]
	if !ok || v.deleted {
		var zero T
		return zero, false
	}
	return v.row, true
}

// notFound wraps ErrNotFound with what was looked up.
func notFound(what string, id any) error {
	return fmt.Errorf("auth: %s %v: %w", what, id, ErrNotFound)
}

// isNotFound reports whether err is ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
