package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb"
)

// versioned is one stored version of a row.
type versioned[T any] struct {
	row     T
	version uint64
	deleted bool
}

// memberKey is the sort key of auth_members.
type memberKey struct{ org, user uuid.UUID }

// table describes how one metadata table is read and written.
type table[K comparable, T any] struct {
	name   string
	cols   string
	scan   func(driver.Rows) (K, versioned[T], error)
	values func(versioned[T]) []any
	key    func(T) K
	mem    func(*tables) map[K]versioned[T]
}

// tables holds the newest known version of every row, tombstones included.
type tables struct {
	orgs    map[uuid.UUID]versioned[Org]
	sites   map[uuid.UUID]versioned[Site]
	users   map[uuid.UUID]versioned[User]
	members map[memberKey]versioned[Member]
	keys    map[uuid.UUID]versioned[APIKey]
	shares  map[uuid.UUID]versioned[ShareLink]
	invites map[uuid.UUID]versioned[Invite]
}

func newTables() *tables {
	return &tables{
		orgs: map[uuid.UUID]versioned[Org]{}, sites: map[uuid.UUID]versioned[Site]{},
		users: map[uuid.UUID]versioned[User]{}, members: map[memberKey]versioned[Member]{},
		keys: map[uuid.UUID]versioned[APIKey]{}, shares: map[uuid.UUID]versioned[ShareLink]{},
		invites: map[uuid.UUID]versioned[Invite]{},
	}
}

// put keeps v when it is newer than what m holds for k.
func put[K comparable, T any](m map[K]versioned[T], k K, v versioned[T]) {
	if old, ok := m[k]; ok && old.version >= v.version {
		return
	}
	m[k] = v
}

// chTime maps the zero time to the Unix epoch, the smallest DateTime.
func chTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// goTime maps the Unix epoch back to the zero time.
func goTime(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Time{}
	}
	return t.UTC()
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func orgsTable() table[uuid.UUID, Org] {
	return table[uuid.UUID, Org]{
		name: "auth_orgs",
		cols: "id, name, events_per_second, events_per_month, max_connections, created_at, deleted, version",
		scan: func(r driver.Rows) (uuid.UUID, versioned[Org], error) {
			var v versioned[Org]
			var del uint8
			err := r.Scan(&v.row.ID, &v.row.Name, &v.row.Quota.EventsPerSecond, &v.row.Quota.EventsPerMonth,
				&v.row.Quota.MaxConnections, &v.row.CreatedAt, &del, &v.version)
			v.deleted, v.row.CreatedAt = del == 1, goTime(v.row.CreatedAt)
			return v.row.ID, v, err
		},
		values: func(v versioned[Org]) []any {
			o := v.row
			return []any{o.ID, o.Name, o.Quota.EventsPerSecond, o.Quota.EventsPerMonth, o.Quota.MaxConnections,
				chTime(o.CreatedAt), b2u(v.deleted), v.version}
		},
		key: func(o Org) uuid.UUID { return o.ID },
		mem: func(t *tables) map[uuid.UUID]versioned[Org] { return t.orgs },
	}
}

func sitesTable() table[uuid.UUID, Site] {
	return table[uuid.UUID, Site]{
		name: "auth_sites",
		cols: "id, org_id, domain, generation, public_key, allowed_origins, time_zone, identity_secret, created_at, deleted, version, honor_dnt, retention_days",
		scan: func(r driver.Rows) (uuid.UUID, versioned[Site], error) {
			var v versioned[Site]
			var del, dnt uint8
			s := &v.row
			err := r.Scan(&s.ID, &s.OrgID, &s.Domain, &s.generation, &s.PublicKey, &s.AllowedOrigins, &s.TimeZone,
				&s.IdentitySecret, &s.CreatedAt, &del, &v.version, &dnt, &s.RetentionDays)
			v.deleted, s.CreatedAt, s.HonorDNT = del == 1, goTime(s.CreatedAt), dnt == 1
			return s.ID, v, err
		},
		values: func(v versioned[Site]) []any {
			s := v.row
			origins := s.AllowedOrigins
			if origins == nil {
				origins = []string{}
			}
			return []any{s.ID, s.OrgID, s.Domain, s.generation, s.PublicKey, origins, s.TimeZone,
				s.IdentitySecret, chTime(s.CreatedAt), b2u(v.deleted), v.version, b2u(s.HonorDNT), s.RetentionDays}
		},
		key: func(s Site) uuid.UUID { return s.ID },
		mem: func(t *tables) map[uuid.UUID]versioned[Site] { return t.sites },
	}
}

func usersTable() table[uuid.UUID, User] {
	return table[uuid.UUID, User]{
		name: "auth_users",
		cols: "id, email, generation, name, password_hash, operator, tokens_valid_after, created_at, deleted, version",
		scan: func(r driver.Rows) (uuid.UUID, versioned[User], error) {
			var v versioned[User]
			var del, op uint8
			u := &v.row
			err := r.Scan(&u.ID, &u.Email, &u.generation, &u.Name, &u.passwordHash, &op, &u.TokensValidAfter,
				&u.CreatedAt, &del, &v.version)
			v.deleted, u.Operator = del == 1, op == 1
			u.CreatedAt, u.TokensValidAfter = goTime(u.CreatedAt), goTime(u.TokensValidAfter)
			return u.ID, v, err
		},
		values: func(v versioned[User]) []any {
			u := v.row
			return []any{u.ID, u.Email, u.generation, u.Name, u.passwordHash, b2u(u.Operator), chTime(u.TokensValidAfter),
				chTime(u.CreatedAt), b2u(v.deleted), v.version}
		},
		key: func(u User) uuid.UUID { return u.ID },
		mem: func(t *tables) map[uuid.UUID]versioned[User] { return t.users },
	}
}

func membersTable() table[memberKey, Member] {
	return table[memberKey, Member]{
		name: "auth_members",
		cols: "org_id, user_id, role, created_at, deleted, version",
		scan: func(r driver.Rows) (memberKey, versioned[Member], error) {
			var v versioned[Member]
			var del uint8
			var role string
			m := &v.row
			err := r.Scan(&m.OrgID, &m.UserID, &role, &m.CreatedAt, &del, &v.version)
			m.Role, v.deleted, m.CreatedAt = Role(role), del == 1, goTime(m.CreatedAt)
			return memberKey{m.OrgID, m.UserID}, v, err
		},
		values: func(v versioned[Member]) []any {
			m := v.row
			return []any{m.OrgID, m.UserID, string(m.Role), chTime(m.CreatedAt), b2u(v.deleted), v.version}
		},
		key: func(m Member) memberKey { return memberKey{m.OrgID, m.UserID} },
		mem: func(t *tables) map[memberKey]versioned[Member] { return t.members },
	}
}

func keysTable() table[uuid.UUID, APIKey] {
	return table[uuid.UUID, APIKey]{
		name: "auth_api_keys",
		cols: "id, org_id, name, prefix, secret_hash, scopes, created_by, created_at, deleted, version",
		scan: func(r driver.Rows) (uuid.UUID, versioned[APIKey], error) {
			var v versioned[APIKey]
			var del uint8
			var scopes []string
			k := &v.row
			err := r.Scan(&k.ID, &k.OrgID, &k.Name, &k.Prefix, &k.secretHash, &scopes, &k.CreatedBy, &k.CreatedAt, &del, &v.version)
			for _, s := range scopes {
				k.Scopes = append(k.Scopes, Scope(s))
			}
			v.deleted, k.CreatedAt = del == 1, goTime(k.CreatedAt)
			return k.ID, v, err
		},
		values: func(v versioned[APIKey]) []any {
			k := v.row
			scopes := []string{}
			for _, s := range k.Scopes {
				scopes = append(scopes, string(s))
			}
			return []any{k.ID, k.OrgID, k.Name, k.Prefix, k.secretHash, scopes, k.CreatedBy, chTime(k.CreatedAt), b2u(v.deleted), v.version}
		},
		key: func(k APIKey) uuid.UUID { return k.ID },
		mem: func(t *tables) map[uuid.UUID]versioned[APIKey] { return t.keys },
	}
}

func sharesTable() table[uuid.UUID, ShareLink] {
	return table[uuid.UUID, ShareLink]{
		name: "auth_share_links",
		cols: "id, org_id, site_id, name, created_by, expires_at, created_at, deleted, version",
		scan: func(r driver.Rows) (uuid.UUID, versioned[ShareLink], error) {
			var v versioned[ShareLink]
			var del uint8
			l := &v.row
			err := r.Scan(&l.ID, &l.OrgID, &l.SiteID, &l.Name, &l.CreatedBy, &l.ExpiresAt, &l.CreatedAt, &del, &v.version)
			v.deleted, l.CreatedAt, l.ExpiresAt = del == 1, goTime(l.CreatedAt), goTime(l.ExpiresAt)
			return l.ID, v, err
		},
		values: func(v versioned[ShareLink]) []any {
			l := v.row
			return []any{l.ID, l.OrgID, l.SiteID, l.Name, l.CreatedBy, chTime(l.ExpiresAt), chTime(l.CreatedAt), b2u(v.deleted), v.version}
		},
		key: func(l ShareLink) uuid.UUID { return l.ID },
		mem: func(t *tables) map[uuid.UUID]versioned[ShareLink] { return t.shares },
	}
}

func invitesTable() table[uuid.UUID, Invite] {
	return table[uuid.UUID, Invite]{
		name: "auth_invites",
		cols: "id, org_id, email, role, token_hash, created_by, expires_at, created_at, deleted, version",
		scan: func(r driver.Rows) (uuid.UUID, versioned[Invite], error) {
			var v versioned[Invite]
			var del uint8
			var role string
			in := &v.row
			err := r.Scan(&in.ID, &in.OrgID, &in.Email, &role, &in.tokenHash, &in.CreatedBy, &in.ExpiresAt, &in.CreatedAt, &del, &v.version)
			in.Role, v.deleted = Role(role), del == 1
			in.CreatedAt, in.ExpiresAt = goTime(in.CreatedAt), goTime(in.ExpiresAt)
			return in.ID, v, err
		},
		values: func(v versioned[Invite]) []any {
			in := v.row
			return []any{in.ID, in.OrgID, in.Email, string(in.Role), in.tokenHash, in.CreatedBy, chTime(in.ExpiresAt),
				chTime(in.CreatedAt), b2u(v.deleted), v.version}
		},
		key: func(i Invite) uuid.UUID { return i.ID },
		mem: func(t *tables) map[uuid.UUID]versioned[Invite] { return t.invites },
	}
}

// load reads the rows of t matching where (all rows when where is empty) and
// returns the newest version per key.
func load[K comparable, T any](ctx context.Context, db *chdb.DB, t table[K, T], where string, args ...any) (map[K]versioned[T], error) {
	q := "SELECT " + t.cols + " FROM " + t.name
	if where != "" {
		q += " WHERE " + where
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("auth: read %s: %w", t.name, err)
	}
	defer rows.Close()
	out := map[K]versioned[T]{}
	for rows.Next() {
		k, v, err := t.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("auth: read %s: %w", t.name, err)
		}
		put(out, k, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: read %s: %w", t.name, err)
	}
	return out, nil
}

// insert writes rows of t in one batch.
func insert[K comparable, T any](ctx context.Context, db *chdb.DB, t table[K, T], rows ...versioned[T]) error {
	return insertLate(ctx, db, t, func() []versioned[T] { return rows })
}

// insertLate writes the rows that makeRows returns once the batch is
// prepared, so that versions taken inside it are as close as possible to
// the moment the rows reach ClickHouse.
func insertLate[K comparable, T any](ctx context.Context, db *chdb.DB, t table[K, T], makeRows func() []versioned[T]) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	batch, err := db.PrepareBatch(ctx, "INSERT INTO "+t.name+" ("+t.cols+")")
	if err != nil {
		return fmt.Errorf("auth: write %s: %w", t.name, err)
	}
	for _, r := range makeRows() {
		if err := batch.Append(t.values(r)...); err != nil {
			batch.Abort()
			return fmt.Errorf("auth: write %s: %w", t.name, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("auth: write %s: %w", t.name, err)
	}
	return nil
}
