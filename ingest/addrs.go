package ingest

import (
	"net/netip"
	"sync"

	"github.com/pulse-analytics/pulse/auth"
)

// ReasonAddressConnections names the per-address connection limit in a
// 4429 close reason (docs/protocol.md).
const ReasonAddressConnections = "address_connections"

// addrConns counts a node's open tracker connections per client address, an
// IPv6 address by its /64 (auth.AddrKey), so that one source cannot hold
// every connection slot of a tenant (Config.MaxConnectionsPerAddress).
type addrConns struct {
	limit int
	mu    sync.Mutex
	open  map[netip.Addr]int
}

func newAddrConns(limit int) *addrConns {
	return &addrConns{limit: limit, open: map[netip.Addr]int{}}
}

// acquire takes a connection slot of ip's address; false when it has none
// left. An unknown address (not valid) is not limited here: the tenant's
// MaxConnections still is.
func (a *addrConns) acquire(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	k := auth.AddrKey(ip)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open[k] >= a.limit {
		return false
	}
	a.open[k]++
	return true
}

// release gives back a slot acquire took.
func (a *addrConns) release(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	k := auth.AddrKey(ip)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open[k]--; a.open[k] <= 0 {
		delete(a.open, k)
	}
}
