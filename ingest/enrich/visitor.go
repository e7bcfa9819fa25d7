package enrich

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/dchest/siphash"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb"
)

// Salt lifetimes.
const (
	// SaltKeepDays is how many UTC days of salts are kept: today's and
	// yesterday's (and, in the last SaltAhead of the day, tomorrow's). Older
	// days' partitions are dropped, so a salt exists from SaltAhead before its
	// day until at most SaltCheckInterval after the next day: about 48 hours.
	SaltKeepDays = 2
	// SaltCheckInterval is how often Run makes sure today's salt exists and drops old ones.
	SaltCheckInterval = time.Minute
	// SaltAhead is how long before its UTC day begins a day's salt is made:
	// twice SaltCheckInterval, so that a check of Run falls in it and the
	// day's first events find their salt loaded.
	SaltAhead = 2 * SaltCheckInterval
	// saltSettle is how long a node waits after inserting a salt before reading
	// back which salt won, so that concurrent inserts are seen.
	saltSettle = 200 * time.Millisecond
	saltBytes  = 16
)

// Salts holds the daily salts that key visitor ids. A salt is random, one per
// UTC day, made SaltAhead before the day begins, shared by every node through
// ClickHouse, and deleted when the day after it ends (about 48 hours in all),
// after which no one — Pulse included — can link a visitor id to an IP address
// and user agent.
type Salts struct {
	db    *chdb.DB
	log   *slog.Logger
	now   func() time.Time
	mu    sync.RWMutex
	byDay map[string][saltBytes]byte // "2026-11-24" → salt
}

// NewSalts returns salts stored in db. Call Load before use and Run to keep them current.
func NewSalts(db *chdb.DB, log *slog.Logger) *Salts {
	return &Salts{db: db, log: log, now: time.Now, byDay: map[string][saltBytes]byte{}}
}

// Load makes sure today's salt exists, and tomorrow's once it is SaltAhead
// away, and reads the salts in use.
func (s *Salts) Load(ctx context.Context) error {
	now := s.now().UTC()
	days := []string{now.Format(time.DateOnly)}
	if next := now.Add(SaltAhead).Format(time.DateOnly); next != days[0] {
		days = append(days, next)
	}
	salts, created, err := s.read(ctx)
	if err != nil {
		return err
	}
	settle := false
	for _, d := range days {
		if _, ok := salts[d]; ok {
			// A salt created moments ago may have a concurrent rival still on
			// its way: settle and read again, as the node that inserted it does.
			settle = settle || s.now().Sub(created[d]) < time.Second
			continue
		}
		if err := s.insert(ctx, d); err != nil {
			return err
		}
		settle = true
	}
	if settle {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(saltSettle):
		}
		if salts, _, err = s.read(ctx); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.byDay = salts
	s.mu.Unlock()
	return nil
}

// insert adds a new random salt for day (YYYY-MM-DD).
func (s *Salts) insert(ctx context.Context, day string) error {
	var salt [saltBytes]byte
	_, _ = rand.Read(salt[:])
	batch, err := s.db.PrepareBatch(ctx, "INSERT INTO salts (day, salt, created_at)")
	if err != nil {
		return fmt.Errorf("enrich: insert salt: %w", err)
	}
	d, _ := time.Parse(time.DateOnly, day)
	if err := batch.Append(d, string(salt[:]), s.now().UTC()); err != nil {
		batch.Abort()
		return fmt.Errorf("enrich: insert salt: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("enrich: insert salt: %w", err)
	}
	return nil
}

// read returns, per day still kept, the salt every node agrees on (the one
// with the earliest (created_at, salt)) and when it was created.
func (s *Salts) read(ctx context.Context) (map[string][saltBytes]byte, map[string]time.Time, error) {
	since := s.now().UTC().AddDate(0, 0, -(SaltKeepDays - 1)).Format(time.DateOnly)
	rows, err := s.db.Query(ctx, `SELECT toString(day), argMin(salt, (created_at, salt)), min(created_at) FROM salts
		WHERE day >= toDate(?) GROUP BY day`, since)
	if err != nil {
		return nil, nil, fmt.Errorf("enrich: read salts: %w", err)
	}
	defer rows.Close()
	out, created := map[string][saltBytes]byte{}, map[string]time.Time{}
	for rows.Next() {
		var (
			day, raw string
			at       time.Time
		)
		if err := rows.Scan(&day, &raw, &at); err != nil {
			return nil, nil, fmt.Errorf("enrich: read salts: %w", err)
		}
		var salt [saltBytes]byte
		copy(salt[:], raw)
		out[day], created[day] = salt, at
	}
	return out, created, rows.Err()
}

var partitionID = regexp.MustCompile(`^\d{8}$`)

// DropExpired drops the partitions of days whose salts must be gone.
func (s *Salts) DropExpired(ctx context.Context) error {
	oldest := s.now().UTC().AddDate(0, 0, -(SaltKeepDays - 1)).Format("20060102")
	rows, err := s.db.Query(ctx, `SELECT DISTINCT partition FROM system.parts
		WHERE database = currentDatabase() AND table = 'salts' AND active AND partition < ?`, oldest)
	if err != nil {
		return fmt.Errorf("enrich: list salt partitions: %w", err)
	}
	var parts []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return fmt.Errorf("enrich: list salt partitions: %w", err)
		}
		parts = append(parts, p)
	}
	rows.Close()
	for _, p := range parts {
		if !partitionID.MatchString(p) { // it comes from system.parts; check it before it goes into SQL
			return fmt.Errorf("enrich: unexpected salt partition %q", p)
		}
		if err := s.db.Exec(ctx, "ALTER TABLE salts DROP PARTITION "+p); err != nil {
			return fmt.Errorf("enrich: drop salts of %s: %w", p, err)
		}
	}
	return nil
}

// Run keeps today's salt present (and tomorrow's, SaltAhead before it is
// due) and drops expired ones until ctx ends.
func (s *Salts) Run(ctx context.Context) error {
	t := time.NewTicker(SaltCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.Load(ctx); err != nil {
			s.log.Warn("salt rotation failed; retrying", "err", err)
			continue
		}
		if err := s.DropExpired(ctx); err != nil {
			s.log.Warn("dropping expired salts failed; retrying", "err", err)
		}
	}
}

// VisitorID is the anonymous id of a visitor on one site on the UTC day of at:
// SipHash-2-4, keyed by that day's salt, of the site, IP address and user
// agent. The same visitor gets another id on another day or another site.
// ok is false when the day's salt is not loaded.
func (s *Salts) VisitorID(at time.Time, site uuid.UUID, ip netip.Addr, userAgent string) (id uint64, ok bool) {
	s.mu.RLock()
	salt, ok := s.byDay[at.UTC().Format(time.DateOnly)]
	s.mu.RUnlock()
	if !ok {
		return 0, false
	}
	k0 := binary.LittleEndian.Uint64(salt[:8])
	k1 := binary.LittleEndian.Uint64(salt[8:])
	ip16 := ip.Unmap().As16()
	msg := make([]byte, 0, 16+16+len(userAgent))
	msg = append(msg, site[:]...)
	msg = append(msg, ip16[:]...)
	msg = append(msg, userAgent...)
	return siphash.Hash(k0, k1, msg), true
}
