package auth

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// Reasons a Decision refuses.
const (
	ReasonEventsPerSecond = "events_per_second"
	ReasonEventsPerMonth  = "events_per_month"
	ReasonConnections     = "connections"
	// ReasonAddressEventsPerDay: the client address spent its daily event
	// budget for the tenant (Config.AddressEventsPerDay).
	ReasonAddressEventsPerDay = "address_events_per_day"
)

// Decision is the answer of a quota check.
type Decision struct {
	Allowed bool
	// Reason names the exhausted quota (Reason* constants) when not Allowed.
	Reason string
	// RetryAfter is when trying again may succeed (at least one second).
	RetryAfter time.Duration
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1.
func (d Decision) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(d.RetryAfter.Seconds())))
}

// Reject answers an HTTP request refused by d: 429 with Retry-After.
func (d Decision) Reject(c *fiber.Ctx) error {
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(d.RetryAfterSeconds()))
	return c.Status(fiber.StatusTooManyRequests).JSON(fiber.Map{
		"error": "over quota: " + d.Reason, "retry_after": d.RetryAfterSeconds()})
}

// CloseFrame is the WebSocket close code and reason for a connection refused
// or ended by d: CloseQuotaExceeded and "<reason> retry_after=<seconds>".
func (d Decision) CloseFrame() (int, string) {
	return CloseQuotaExceeded, fmt.Sprintf("%s retry_after=%d", d.Reason, d.RetryAfterSeconds())
}

// DailyUsage is one tenant's usage on one UTC day.
type DailyUsage struct {
	Day time.Time `json:"day"`
	// Events counts the events stored in ClickHouse that were received on
	// Day, each once (MeterStored).
	Events uint64 `json:"events"`
	// RejectedEvents counts the events refused on Day because the tenant
	// was over a quota, or their address over its daily budget (AllowEvents).
	RejectedEvents uint64 `json:"rejected_events"`
}

type usageKey struct {
	org uuid.UUID
	day time.Time // UTC midnight
}

type usageCount struct{ events, rejected uint64 }

// bucket is a token bucket refilled at rate tokens per second up to rate.
type bucket struct {
	tokens float64
	last   time.Time
}

// quotas holds the per-tenant counters of one node: the state of the limits
// (token buckets, connections, events in flight) and the metered usage not
// written yet.
type quotas struct {
	mu      sync.Mutex
	buckets map[uuid.UUID]*bucket
	conns   map[uuid.UUID]uint32
	// inflight counts the events allowEvents allowed and settle has not
	// settled yet: neither stored nor left out nor given up.
	inflight map[uuid.UUID]uint64
	// month is the current month's stored events per org as read from
	// ClickHouse at the last refresh; monthStart names that month.
	month      map[uuid.UUID]uint64
	monthStart time.Time
	// flushed counts stored events written since month was read; pending
	// counts stored (and refused) events not written yet, and pendingMonth
	// the stored ones of them in the month starting at pendingMonthStart.
	flushed           map[uuid.UUID]uint64
	pending           map[usageKey]usageCount
	pendingMonth      map[uuid.UUID]uint64
	pendingMonthStart time.Time

	// addrs is the day's per-address event budget.
	addrs *addrBudgets

	// flushMu orders flushes against month reloads.
	flushMu sync.Mutex
	// now is the clock of the Store's checks and month reloads (tests set
	// a fixed one: the month and the day are the clock's).
	now func() time.Time
}

// newQuotas returns empty counters with a daily budget of addrEventsPerDay
// events per tenant and client address.
func newQuotas(addrEventsPerDay uint64) *quotas {
	return &quotas{buckets: map[uuid.UUID]*bucket{}, conns: map[uuid.UUID]uint32{}, inflight: map[uuid.UUID]uint64{},
		month: map[uuid.UUID]uint64{}, flushed: map[uuid.UUID]uint64{}, pending: map[usageKey]usageCount{},
		pendingMonth: map[uuid.UUID]uint64{}, addrs: newAddrBudgets(addrEventsPerDay, MaxAddressBudgets), now: time.Now}
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func dayStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// setMonth replaces the month totals with fresh ones read at now.
func (q *quotas) setMonth(month map[uuid.UUID]uint64, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.month, q.monthStart = month, monthStart(now)
	clear(q.flushed)
}

// allowEvents decides whether org may send n more events from addr at now
// under quota and the per-address budget. The monthly quota is checked
// against the month's stored events (read at the last refresh, plus those
// stored since) and the events in flight; allowed events are in flight until
// settle and count in addr's budget of the day, refused ones are counted as
// rejected.
func (q *quotas) allowEvents(org uuid.UUID, addr netip.Addr, n int, quota Quota, now time.Time) Decision {
	q.mu.Lock()
	defer q.mu.Unlock()
	day := usageKey{org, dayStart(now)}
	ms := monthStart(now)
	if !q.pendingMonthStart.Equal(ms) {
		q.recountPendingMonth(ms)
	}
	used := q.flushed[org] + q.pendingMonth[org] + q.inflight[org]
	if q.monthStart.Equal(ms) {
		used += q.month[org]
	}
	refuse := func(d Decision) Decision {
		c := q.pending[day]
		c.rejected += uint64(n)
		q.pending[day] = c
		return d
	}
	if used+uint64(n) > quota.EventsPerMonth {
		return refuse(Decision{Reason: ReasonEventsPerMonth, RetryAfter: ms.AddDate(0, 1, 0).Sub(now)})
	}
	if d := q.addrs.check(org, addr, n, now); !d.Allowed {
		return refuse(d)
	}
	rate := float64(quota.EventsPerSecond)
	b := q.buckets[org]
	if b == nil {
		b = &bucket{tokens: rate, last: now}
		q.buckets[org] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(rate, b.tokens+el*rate)
		b.last = now
	}
	need := min(float64(n), rate)
	if b.tokens < need {
		wait := time.Duration((need - b.tokens) / rate * float64(time.Second))
		return refuse(Decision{Reason: ReasonEventsPerSecond, RetryAfter: wait})
	}
	b.tokens -= float64(n)
	q.addrs.charge(org, addr, n)
	q.inflight[org] += uint64(n)
	return Decision{Allowed: true}
}

// settle takes n of org's events out of flight.
func (q *quotas) settle(org uuid.UUID, n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if have := q.inflight[org]; uint64(n) < have {
		q.inflight[org] = have - uint64(n)
	} else {
		delete(q.inflight, org)
	}
}

// meter adds n stored events of org, received on day, to the usage.
func (q *quotas) meter(org uuid.UUID, day time.Time, n uint64) {
	k := usageKey{org, dayStart(day)}
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.pending[k]
	c.events += n
	q.pending[k] = c
	if !k.day.Before(q.pendingMonthStart) {
		q.pendingMonth[org] += n
	}
}

// recountPendingMonth recomputes pendingMonth for the month starting at ms.
func (q *quotas) recountPendingMonth(ms time.Time) {
	clear(q.pendingMonth)
	q.pendingMonthStart = ms
	for k, c := range q.pending {
		if !k.day.Before(ms) {
			q.pendingMonth[k.org] += c.events
		}
	}
}

// acquire takes one connection slot of org.
func (q *quotas) acquire(org uuid.UUID, limit uint32) (func(), Decision) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conns[org] >= limit {
		return func() {}, Decision{Reason: ReasonConnections, RetryAfter: connectionRetryAfter}
	}
	q.conns[org]++
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			if q.conns[org]--; q.conns[org] == 0 {
				delete(q.conns, org)
			}
		})
	}, Decision{Allowed: true}
}

// takePending removes and returns the unwritten counts.
func (q *quotas) takePending() map[usageKey]usageCount {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending
	q.pending = map[usageKey]usageCount{}
	clear(q.pendingMonth)
	return p
}

// written records that p reached ClickHouse (ok) or puts it back (!ok).
func (q *quotas) written(p map[usageKey]usageCount, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, c := range p {
		if ok {
			if k.day.Before(q.monthStart) {
				continue
			}
			q.flushed[k.org] += c.events
			continue
		}
		have := q.pending[k]
		have.events += c.events
		have.rejected += c.rejected
		q.pending[k] = have
		if !k.day.Before(q.pendingMonthStart) {
			q.pendingMonth[k.org] += c.events
		}
	}
}

// QuotaOf returns the quota that applies to org: its own fields, defaults for zero ones.
func (s *Store) QuotaOf(org uuid.UUID) Quota {
	s.mu.RLock()
	o, _ := liveRow(s.t.orgs, org)
	s.mu.RUnlock()
	q, def := o.Quota, s.cfg.DefaultQuota
	if q.EventsPerSecond == 0 {
		q.EventsPerSecond = def.EventsPerSecond
	}
	if q.EventsPerMonth == 0 {
		q.EventsPerMonth = def.EventsPerMonth
	}
	if q.MaxConnections == 0 {
		q.MaxConnections = def.MaxConnections
	}
	return q
}

// AllowEvents checks n events of org sent from addr, about to be accepted,
// against its quotas and addr's daily budget (Config.AddressEventsPerDay)
// and says whether they may be. addr is the client's address, the zero Addr
// for a sender not limited per address (a server authenticated with a
// secret API key, whose events carry each visitor's own address, or an
// unknown address). It is the limit check, not the meter: allowed events are
// in flight, counted against the monthly quota until SettleEvents says what
// became of them; the usage counts them once stored (MeterStored). Refused
// events are counted as rejected in the daily usage.
func (s *Store) AllowEvents(org uuid.UUID, addr netip.Addr, n int) Decision {
	return s.quotas.allowEvents(org, addr, n, s.QuotaOf(org), s.quotas.now())
}

// SettleEvents takes n events of org that AllowEvents allowed out of flight:
// they are stored (and metered), left out as stored already, or given up.
func (s *Store) SettleEvents(org uuid.UUID, n int) {
	s.quotas.settle(org, n)
}

// MeterStored adds n events of org, stored in ClickHouse and received on the
// UTC day of day, to its usage: ingest's writer calls it after each
// committed insert, for the events the insert wrote (the demo's back-filled
// history included), so each stored event counts once, whatever path it came
// by and however often it was sent. The counts are written with the next
// Flush; until then they count in this node's monthly quota checks.
func (s *Store) MeterStored(org uuid.UUID, day time.Time, n int) {
	if n > 0 {
		s.quotas.meter(org, day, uint64(n))
	}
}

// AcquireConnection takes one of org's concurrent connection slots on this
// node. Call release (once is enough; more is harmless) when the connection
// ends. When the decision refuses, release does nothing.
func (s *Store) AcquireConnection(org uuid.UUID) (release func(), d Decision) {
	return s.quotas.acquire(org, s.QuotaOf(org).MaxConnections)
}

// Flush writes metered usage, refused events and API key last-use times to ClickHouse.
func (s *Store) Flush(ctx context.Context) error {
	s.quotas.flushMu.Lock()
	defer s.quotas.flushMu.Unlock()
	p := s.quotas.takePending()
	if len(p) > 0 {
		err := s.writeUsage(ctx, p)
		s.quotas.written(p, err == nil)
		if err != nil {
			return err
		}
	}
	return s.flushLastUsed(ctx)
}

func (s *Store) writeUsage(ctx context.Context, p map[usageKey]usageCount) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	batch, err := s.db.PrepareBatch(ctx, "INSERT INTO auth_usage_daily (org_id, day, events, rejected_events)")
	if err != nil {
		return fmt.Errorf("auth: write usage: %w", err)
	}
	for k, c := range p {
		if err := batch.Append(k.org, k.day, c.events, c.rejected); err != nil {
			batch.Abort()
			return fmt.Errorf("auth: write usage: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("auth: write usage: %w", err)
	}
	return nil
}

// loadMonthUsage reads the stored events of the month of now per org.
func (s *Store) loadMonthUsage(ctx context.Context, now time.Time) (map[uuid.UUID]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := s.db.Query(ctx, "SELECT org_id, sum(events) FROM auth_usage_daily WHERE day >= toDate(?) GROUP BY org_id",
		monthStart(now).Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("auth: read month usage: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID]uint64{}
	for rows.Next() {
		var org uuid.UUID
		var n uint64
		if err := rows.Scan(&org, &n); err != nil {
			return nil, fmt.Errorf("auth: read month usage: %w", err)
		}
		out[org] = n
	}
	return out, rows.Err()
}

// refreshMonth reloads month totals, ordered against flushes.
func (s *Store) refreshMonth(ctx context.Context) error {
	s.quotas.flushMu.Lock()
	defer s.quotas.flushMu.Unlock()
	now := s.quotas.now()
	month, err := s.loadMonthUsage(ctx, now)
	if err != nil {
		return err
	}
	s.quotas.setMonth(month, now)
	return nil
}

// Usage returns org's usage per UTC day from from to to (inclusive), as
// written by every node's last flush (counts lag by up to UsageFlushInterval).
func (s *Store) Usage(ctx context.Context, org uuid.UUID, from, to time.Time) ([]DailyUsage, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := s.db.Query(ctx, `SELECT day, sum(events), sum(rejected_events) FROM auth_usage_daily
		WHERE org_id = ? AND day >= toDate(?) AND day <= toDate(?) GROUP BY day ORDER BY day`,
		org, from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("auth: read usage: %w", err)
	}
	defer rows.Close()
	out := []DailyUsage{}
	for rows.Next() {
		var u DailyUsage
		if err := rows.Scan(&u.Day, &u.Events, &u.RejectedEvents); err != nil {
			return nil, fmt.Errorf("auth: read usage: %w", err)
		}
		u.Day = dayStart(u.Day)
		out = append(out, u)
	}
	return out, rows.Err()
}
