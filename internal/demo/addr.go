package demo

import (
	"net/netip"

	"github.com/pulse-analytics/pulse/ingest/enrich"
)

// Live visitors connect from their own loopback address, 127.P.H.L: P is
// addrPlaceBase plus the index of the visitor's place, H.L the visitor's
// number. Linux routes all of 127.0.0.0/8 to the loopback interface, so a
// client socket can bind any of them and ingest sees a distinct client
// address per visitor: distinct visitor ids, from the real enrichment. The
// place in the address lets Locate give the demo's geography without a
// geography database. 127.0.0.1 itself (P = 0) is never a demo visitor.
const addrPlaceBase = 16

// Addr returns the loopback address of visitor n from place.
func (g *generator) addr(v *visit) netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(addrPlaceBase + v.place), byte(v.addr >> 8), byte(v.addr)})
}

// Locator places the demo's live visitors by their loopback address. It is
// meant for `pulse dev --demo` only, where every visitor connects over
// loopback: any other address is unknown to it.
type Locator struct{ places []place }

// NewLocator returns the demo's locator.
func NewLocator() Locator { return Locator{places: sitePlaces()} }

// Locate returns where the demo visitor at addr is; ok is false for any
// address that is not a demo visitor's.
func (l Locator) Locate(addr netip.Addr) (loc enrich.Location, ok bool) {
	addr = addr.Unmap()
	if !addr.Is4() {
		return enrich.Location{}, false
	}
	b := addr.As4()
	i := int(b[1]) - addrPlaceBase
	if b[0] != 127 || i < 0 || i >= len(l.places) {
		return enrich.Location{}, false
	}
	return l.places[i].Location, true
}
