package auth

import (
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// addrPair is one tenant and one client address key (AddrKey).
type addrPair struct {
	org  uuid.UUID
	addr netip.Addr
}

// addrBudgets counts the events each (tenant, client address) pair was
// allowed on this node during the current UTC day, against a daily budget
// (Config.AddressEventsPerDay). A new day starts with every count at zero.
// It holds at most capacity pairs (MaxAddressBudgets) and, when full,
// forgets the least recently used one: a flood of addresses costs bounded
// memory and never refuses a fresh client (a forgotten pair starts again
// from zero). Not safe for concurrent use: quotas.mu guards it.
type addrBudgets struct {
	limit    uint64
	capacity int
	day      time.Time // UTC midnight of the day counted
	spent    *lru[addrPair, uint64]
}

func newAddrBudgets(limit uint64, capacity int) *addrBudgets {
	return &addrBudgets{limit: limit, capacity: capacity, spent: newLRU[addrPair, uint64](capacity)}
}

// check says whether addr may send n more of org's events at now; when it
// may not, the Decision refuses until the next UTC midnight. An invalid
// address is not limited here.
func (b *addrBudgets) check(org uuid.UUID, addr netip.Addr, n int, now time.Time) Decision {
	if !addr.IsValid() {
		return Decision{Allowed: true}
	}
	b.roll(now)
	var used uint64
	if p := b.spent.get(addrPair{org, AddrKey(addr)}); p != nil {
		used = *p
	}
	if used+uint64(n) > b.limit {
		return Decision{Reason: ReasonAddressEventsPerDay, RetryAfter: b.day.AddDate(0, 0, 1).Sub(now)}
	}
	return Decision{Allowed: true}
}

// charge counts n allowed events of org from addr (after check at the same now).
func (b *addrBudgets) charge(org uuid.UUID, addr netip.Addr, n int) {
	if !addr.IsValid() {
		return
	}
	k := addrPair{org, AddrKey(addr)}
	p := b.spent.get(k)
	if p == nil {
		p = b.spent.add(k)
	}
	*p += uint64(n)
}

// roll forgets the counts of a past day.
func (b *addrBudgets) roll(now time.Time) {
	if day := dayStart(now); !day.Equal(b.day) {
		b.day = day
		if b.spent.len() > 0 {
			b.spent = newLRU[addrPair, uint64](b.capacity)
		}
	}
}
