package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// loginLimiter throttles password checks (login, password change, invite
// acceptance for an existing account) so that guessing is slow without
// letting a guesser lock the real user out, and without ever refusing
// everyone:
//
//   - per account and client address: the first LoginFreeFailures failures
//     cost nothing, each further one doubles a wait (LoginBackoffBase, at most
//     LoginMaxBackoff) before the next attempt from that address;
//   - per client address, across accounts: perIP attempts per window;
//   - per account, from addresses it has never logged in from: perAccount
//     attempts per window. An address (IPv4, or IPv6 /64) the account logged
//     in from within LoginKnownAddressLifetime is not held back by this
//     limit, so failures from elsewhere do not lock its owner out.
//
// An attempt counts as a failure when it is allowed; succeeded takes it back.
// Every table holds at most MaxLimiterEntries keys and, when full, forgets
// its least recently used key to make room, so a flood of addresses or
// accounts costs bounded memory and never refuses a fresh client.
type loginLimiter struct {
	window     time.Duration
	perAccount int
	perIP      int

	mu       sync.Mutex
	pairs    *lru[pairKey, backoff]
	addrs    *lru[netip.Addr, windowCount]
	accounts *lru[string, windowCount]
	known    *lru[pairKey, time.Time] // last good login
}

// pairKey is an account and a client address key (AddrKey).
type pairKey struct {
	account string
	addr    netip.Addr
}

// backoff is the failure count of one account from one address and the
// time before which it may not try again.
type backoff struct {
	failures int
	last     time.Time
	until    time.Time
}

// windowCount counts attempts in a window that starts at the first one.
type windowCount struct {
	start time.Time
	n     int
}

func newLoginLimiter(window time.Duration, perAccount, perIP int) *loginLimiter {
	return &loginLimiter{window: window, perAccount: perAccount, perIP: perIP,
		pairs: newLRU[pairKey, backoff](MaxLimiterEntries), addrs: newLRU[netip.Addr, windowCount](MaxLimiterEntries),
		accounts: newLRU[string, windowCount](MaxLimiterEntries), known: newLRU[pairKey, time.Time](MaxLimiterEntries)}
}

// allow counts one attempt for account from ip, or refuses it and says how
// long to wait.
func (l *loginLimiter) allow(account string, ip netip.Addr, now time.Time) (time.Duration, bool) {
	pk := pairKey{account, AddrKey(ip)}
	l.mu.Lock()
	defer l.mu.Unlock()
	pair := l.pairs.get(pk)
	if pair != nil && now.Sub(pair.last) >= l.window {
		*pair = backoff{}
	}
	addr := l.addrs.get(pk.addr)
	if addr != nil {
		addr.roll(now, l.window)
	}
	acc := l.accounts.get(account)
	if acc != nil {
		acc.roll(now, l.window)
	}
	known := false
	if t := l.known.get(pk); t != nil && now.Sub(*t) < LoginKnownAddressLifetime {
		known = true
	}
	var retry time.Duration
	if pair != nil && now.Before(pair.until) {
		retry = max(retry, pair.until.Sub(now))
	}
	if addr != nil && addr.n >= l.perIP {
		retry = max(retry, addr.start.Add(l.window).Sub(now))
	}
	if !known && acc != nil && acc.n >= l.perAccount {
		retry = max(retry, acc.start.Add(l.window).Sub(now))
	}
	if retry > 0 {
		return retry, false
	}
	if pair == nil {
		pair = l.pairs.add(pk)
	}
	pair.failures++
	pair.last = now
	if extra := pair.failures - LoginFreeFailures; extra >= 0 {
		pair.until = now.Add(backoffAfter(extra))
	}
	if addr == nil {
		addr = l.addrs.add(pk.addr)
		addr.start = now
	}
	addr.n++
	if !known {
		if acc == nil {
			acc = l.accounts.add(account)
			acc.start = now
		}
		acc.n++
	}
	return 0, true
}

// succeeded takes back the attempt allow counted for a good password,
// forgets the failures of account from ip and remembers ip as known.
func (l *loginLimiter) succeeded(account string, ip netip.Addr, now time.Time) {
	pk := pairKey{account, AddrKey(ip)}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pairs.remove(pk)
	if addr := l.addrs.get(pk.addr); addr != nil && addr.n > 0 {
		addr.n--
	}
	wasKnown := false
	if t := l.known.get(pk); t != nil && now.Sub(*t) < LoginKnownAddressLifetime {
		wasKnown = true
	}
	if acc := l.accounts.get(account); acc != nil && !wasKnown && acc.n > 0 {
		acc.n--
	}
	t := l.known.get(pk)
	if t == nil {
		t = l.known.add(pk)
	}
	*t = now
}

// backoffAfter is the wait after extra failures beyond the free ones.
func backoffAfter(extra int) time.Duration {
	if extra >= 30 {
		return LoginMaxBackoff
	}
	return min(LoginBackoffBase<<extra, LoginMaxBackoff)
}

// roll starts a new window when the current one is over.
func (w *windowCount) roll(now time.Time, window time.Duration) {
	if now.Sub(w.start) >= window || now.Before(w.start) {
		*w = windowCount{start: now}
	}
}

// AddrKey is the unit a client address is limited by (the login throttle,
// the per-address event budget, ingest's connections per address): an IPv4
// address (or IPv4-mapped IPv6 one) as is, an IPv6 address by its /64, since
// one subscriber usually holds a whole /64. An invalid address stays the
// zero Addr, one key for every unknown address.
func AddrKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// lru is a map of at most capacity keys that forgets the least recently
// used key to make room for a new one. Not safe for concurrent use.
type lru[K comparable, V any] struct {
	capacity int
	order    *list.List // front: most recently used; elements hold *lruItem
	items    map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](capacity int) *lru[K, V] {
	return &lru[K, V]{capacity: capacity, order: list.New(), items: map[K]*list.Element{}}
}

// get returns the value of k, marked as just used, or nil.
func (c *lru[K, V]) get(k K) *V {
	e, ok := c.items[k]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return &e.Value.(*lruItem[K, V]).val
}

// add inserts k with the zero value, forgetting the least recently used key
// when full, and returns the new value.
func (c *lru[K, V]) add(k K) *V {
	if len(c.items) >= c.capacity {
		if old := c.order.Back(); old != nil {
			c.order.Remove(old)
			delete(c.items, old.Value.(*lruItem[K, V]).key)
		}
	}
	it := &lruItem[K, V]{key: k}
	c.items[k] = c.order.PushFront(it)
	return &it.val
}

// remove forgets k.
func (c *lru[K, V]) remove(k K) {
	if e, ok := c.items[k]; ok {
		c.order.Remove(e)
		delete(c.items, k)
	}
}

// len is the number of keys held.
func (c *lru[K, V]) len() int { return len(c.items) }
