package demo

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestLocateFindsTheDemoVisitorsPlaceAndNothingElse(t *testing.T) {
	g := newGenerator("demo.localhost", 3, 1000, true)
	loc := NewLocator()
	r := newRand(3)
	var v visit
	countries := map[string]bool{}
	for i := range 500 {
		g.next(r, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute), &v)
		got, ok := loc.Locate(g.addr(&v))
		if want := g.site.places[v.place].Location; !ok || got != want {
			t.Fatalf("Locate(%s) = %+v, %v; want %+v", g.addr(&v), got, ok, want)
		}
		countries[got.Country] = true
	}
	if len(countries) < 10 {
		t.Errorf("500 visitors came from %d countries", len(countries))
	}
	for _, addr := range []string{"127.0.0.1", "127.15.1.1", "127.255.0.1", "10.16.0.1", "::1", "2001:db8::1", "::ffff:192.0.2.1"} {
		if got, ok := loc.Locate(netip.MustParseAddr(addr)); ok {
			t.Errorf("Locate(%s) = %+v: only demo visitors' addresses have a place", addr, got)
		}
	}
	if _, ok := loc.Locate(netip.MustParseAddr("::ffff:127.16.0.9")); !ok {
		t.Error("an IPv4-mapped demo address has no place")
	}
}

func TestVisitorSocketsConnectFromTheirOwnLoopbackAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target, bind, err := dialTarget("http://" + ln.Addr().String())
	if err != nil || !bind || target != ln.Addr().String() {
		t.Fatalf("dialTarget = %q, %v, %v", target, bind, err)
	}
	src := netip.MustParseAddr("127.42.7.9")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	c, err := d.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != src {
		t.Errorf("the server sees %s, want %s", got, src)
	}

	for server, want := range map[string]bool{"http://0.0.0.0:8080": true, "http://[::]:8080": true, "http://localhost:8080": true,
		"http://192.0.2.10:8080": false, "http://[::1]:8080": false} {
		if _, bind, err := dialTarget(server); err != nil || bind != want {
			t.Errorf("dialTarget(%s): bind %v, %v; want %v", server, bind, err, want)
		}
	}
}
