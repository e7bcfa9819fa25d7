package dashboard

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/pulse-analytics/pulse/auth"
)

// Subject names the person whose data an erasure deletes: exactly one of
// UserID (the id a site passes to identify) and VisitorID.
type Subject struct {
	UserID    string
	VisitorID uint64
}

// match is the condition on events that selects the subject's own events.
func (s Subject) match() predicate {
	if s.UserID != "" {
		return predicate{"user_id = ?", []any{s.UserID}}
	}
	return predicate{"visitor_id = ?", []any{s.VisitorID}}
}

// Mutation is one ClickHouse mutation (ALTER TABLE … DELETE) as
// system.mutations reports it.
type Mutation struct {
	Table string `json:"table"`
	// ID is ClickHouse's id of the mutation, unique within Table.
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// PartsToDo counts the data parts still to be rewritten.
	PartsToDo int64 `json:"parts_to_do"`
	Done      bool  `json:"done"`
}

// Deletion is what an erasure or a deletion of a site's data started.
type Deletion struct {
	// Events is the number of events found to delete (erasures only).
	Events uint64 `json:"events"`
	// Visits is the number of visits found to delete (erasures only).
	Visits int `json:"visits"`
	// Mutations are the mutations that delete them; none when nothing matched.
	Mutations []Mutation `json:"mutations"`
}

// Done reports whether every mutation has finished: the rows are gone.
func (d Deletion) Done() bool {
	for _, m := range d.Mutations {
		if !m.Done {
			return false
		}
	}
	return true
}

// Erase deletes one person's data of site: the events of the subject, every
// event of the visits those events belong to (a visit's pages before
// identify are the same person's), and those visits; events from `events`
// and from engagement_events, which holds a copy of the engagement events.
// The keys in event_ids stay (docs/privacy.md). It returns once the
// mutations are registered; Wait waits for them to finish.
func (l *Lifecycle) Erase(ctx context.Context, site auth.Site, who Subject) (Deletion, error) {
	var d Deletion
	if (who.UserID == "") == (who.VisitorID == 0) {
		return d, fmt.Errorf("lifecycle: erase: name exactly one of a user id and a visitor id")
	}
	scope, own := sitePredicate(site), sitePredicate(site).and(who.match().sql, who.match().args...)

	sessions, err := l.sessionIDs(ctx, own)
	if err != nil {
		return d, err
	}
	d.Visits = len(sessions)
	// The subquery only reads, so it is safe here; the mutations below bind
	// the session ids instead (a mutation's subquery on its own table would
	// see rows that earlier parts of the same mutation already deleted).
	visits := "session_id IN (SELECT session_id FROM events WHERE " + own.sql + " AND session_id != 0)"
	count := scope.and("("+who.match().sql+" OR "+visits+")", append(who.match().args, own.args...)...)
	if err := l.db.QueryRow(ctx, "SELECT uniqExact(event_id) FROM events WHERE "+count.sql, count.args...).Scan(&d.Events); err != nil {
		return d, fmt.Errorf("lifecycle: erase: count events: %w", err)
	}
	if d.Events == 0 && d.Visits == 0 {
		return d, nil
	}

	return l.track(ctx, site, d, func() error {
		chunks := slices.Collect(slices.Chunk(sessions, maxSessionsPerMutation))
		if len(chunks) == 0 {
			chunks = [][]uint64{nil}
		}
		for i, chunk := range chunks {
			var events predicate
			switch {
			case i == 0 && len(chunk) > 0:
				events = scope.and("("+who.match().sql+" OR session_id IN ?)", append(who.match().args, inList(chunk))...)
			case i == 0:
				events = own
			default:
				events = scope.and("session_id IN ?", inList(chunk))
			}
			for _, table := range []string{"events", "engagement_events"} {
				if err := l.deleteWhere(ctx, table, events); err != nil {
					return err
				}
			}
			if len(chunk) > 0 {
				for _, table := range []string{"sessions", "sessions_final", "sessions_recent"} {
					if err := l.deleteWhere(ctx, table, scope.and("session_id IN ?", inList(chunk))); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// DeleteSiteData deletes every event and visit of site. The site itself
// stays and keeps collecting. It returns once the mutations are registered.
func (l *Lifecycle) DeleteSiteData(ctx context.Context, site auth.Site) (Deletion, error) {
	var tables []string
	for _, t := range lifecycleTables {
		found, err := l.exists(ctx, t.name, sitePredicate(site))
		if err != nil {
			return Deletion{}, err
		}
		if found {
			tables = append(tables, t.name)
		}
	}
	if len(tables) == 0 {
		return Deletion{}, nil
	}
	return l.track(ctx, site, Deletion{}, func() error {
		for _, t := range tables {
			if err := l.deleteWhere(ctx, t, sitePredicate(site)); err != nil {
				return err
			}
		}
		return nil
	})
}

// track runs start, which registers mutations naming site, and adds to d
// the mutations of site that appeared meanwhile: those start registered
// (and any other deletion of the same site started at the same moment,
// which is as well waited for).
func (l *Lifecycle) track(ctx context.Context, site auth.Site, d Deletion, start func() error) (Deletion, error) {
	before, err := l.SiteMutations(ctx, site)
	if err != nil {
		return d, err
	}
	if err := start(); err != nil {
		return d, err
	}
	after, err := l.SiteMutations(ctx, site)
	if err != nil {
		return d, err
	}
	for _, m := range after {
		if !slices.ContainsFunc(before, func(b Mutation) bool { return b.Table == m.Table && b.ID == m.ID }) {
			d.Mutations = append(d.Mutations, m)
		}
	}
	if len(d.Mutations) == 0 {
		return d, fmt.Errorf("lifecycle: the deletion's mutations are not in system.mutations")
	}
	return d, nil
}

// Wait polls system.mutations until every mutation of d has finished, ctx
// ends or timeout passes, and returns d with their latest state. It fails
// only when ClickHouse cannot be read; a deletion still running is not an error.
func (l *Lifecycle) Wait(ctx context.Context, site auth.Site, d Deletion, timeout time.Duration) (Deletion, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(mutationPoll)
	defer tick.Stop()
	for !d.Done() {
		select {
		case <-ctx.Done():
			return d, nil
		case <-tick.C:
		}
		now, err := l.SiteMutations(ctx, site)
		if err != nil {
			if ctx.Err() != nil {
				return d, nil
			}
			return d, err
		}
		for i, m := range d.Mutations {
			if j := slices.IndexFunc(now, func(n Mutation) bool { return n.Table == m.Table && n.ID == m.ID }); j >= 0 {
				d.Mutations[i] = now[j]
			}
		}
	}
	return d, nil
}

// SiteMutations lists the mutations of the lifecycle's tables whose command
// names site's org and id: its erasures, the deletions of its data, and the
// retention job's mutations that include it. ClickHouse keeps the last 100
// finished mutations of a table.
func (l *Lifecycle) SiteMutations(ctx context.Context, site auth.Site) ([]Mutation, error) {
	tables := make([]string, len(lifecycleTables))
	for i, t := range lifecycleTables {
		tables[i] = t.name
	}
	rows, err := l.db.Query(ctx, `SELECT table, mutation_id, create_time, parts_to_do, is_done FROM system.mutations
		WHERE database = currentDatabase() AND has(?, table)
		AND position(command, ?) > 0 AND position(command, ?) > 0
		ORDER BY create_time, table, mutation_id`, tables, site.OrgID.String(), site.ID.String())
	if err != nil {
		return nil, fmt.Errorf("lifecycle: read mutations: %w", err)
	}
	defer rows.Close()
	var out []Mutation
	for rows.Next() {
		var m Mutation
		var done uint8
		if err := rows.Scan(&m.Table, &m.ID, &m.CreatedAt, &m.PartsToDo, &done); err != nil {
			return nil, fmt.Errorf("lifecycle: read mutations: %w", err)
		}
		m.Done, m.CreatedAt = done == 1, m.CreatedAt.UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// sessionIDs returns the distinct non-zero session ids of the events matching p.
func (l *Lifecycle) sessionIDs(ctx context.Context, p predicate) ([]uint64, error) {
	rows, err := l.db.Query(ctx, "SELECT DISTINCT session_id FROM events WHERE "+p.sql+" AND session_id != 0 ORDER BY session_id", p.args...)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: find visits: %w", err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("lifecycle: find visits: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// inList binds ids as the parenthesised list of an IN.
func inList(ids []uint64) clickhouse.GroupSet {
	v := make([]any, len(ids))
	for i, id := range ids {
		v[i] = id
	}
	return clickhouse.GroupSet{Value: v}
}
