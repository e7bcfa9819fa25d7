package auth

import (
	"net/netip"
	"sync"
	"time"
)

// loginLimiter counts login attempts per account and per client address in
// fixed windows. It keeps only the current window, so its memory is bounded by
// MaxLimiterEntries keys per map.
type loginLimiter struct {
	window     time.Duration
	perAccount int
	perIP      int

	mu       sync.Mutex
	start    time.Time
	accounts map[string]int
	ips      map[string]int
}

func newLoginLimiter(window time.Duration, perAccount, perIP int) *loginLimiter {
	return &loginLimiter{window: window, perAccount: perAccount, perIP: perIP,
		accounts: map[string]int{}, ips: map[string]int{}}
}

// allow counts one attempt for account from ip, or refuses it and says how
// long until the window ends.
func (l *loginLimiter) allow(account string, ip netip.Addr, now time.Time) (time.Duration, bool) {
	ipKey := addrKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window || now.Before(l.start) {
		l.start = now.Truncate(l.window)
		clear(l.accounts)
		clear(l.ips)
	}
	retry := l.start.Add(l.window).Sub(now)
	na, seenA := l.accounts[account]
	ni, seenI := l.ips[ipKey]
	if na >= l.perAccount || ni >= l.perIP {
		return retry, false
	}
	if (!seenA && len(l.accounts) >= MaxLimiterEntries) || (!seenI && len(l.ips) >= MaxLimiterEntries) {
		return retry, false
	}
	l.accounts[account] = na + 1
	l.ips[ipKey] = ni + 1
	return 0, true
}

// succeeded forgets the failed attempts of account after a good login.
func (l *loginLimiter) succeeded(account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.accounts, account)
}

// addrKey is the unit an address is limited by: the IPv4 address, or the /64
// of an IPv6 address (one subscriber usually holds a whole /64).
func addrKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return "invalid"
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
