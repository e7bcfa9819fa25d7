package enrich

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// testGeoDB is a public country database that npm installs (package.json at
// the repository root; make test runs npm ci). It is never committed.
func testGeoDB(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "node_modules", "@ip-location-db", "geo-whois-asn-country-mmdb", "geo-whois-asn-country.mmdb")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("test geoip database missing (%v): run npm ci at the repository root", err)
	}
	return path
}

func TestGeoDBLookup(t *testing.T) {
	db, err := OpenGeoDB(testGeoDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		ip, country string
	}{
		{"8.8.8.8", "US"},
		{"81.2.69.142", "GB"},
		{"193.99.144.80", "DE"},
		{"2001:4860:4860::8888", "US"},
		{"::ffff:193.99.144.80", "DE"}, // IPv4-mapped, as a dual-stack listener reports it
		{"127.0.0.1", ""},
		{"10.1.2.3", ""},
	}
	for _, tt := range tests {
		if got := db.Lookup(netip.MustParseAddr(tt.ip)); got.Country != tt.country {
			t.Errorf("%s: country %q, want %q", tt.ip, got.Country, tt.country)
		}
	}
	var none *GeoDB
	if got := none.Lookup(netip.MustParseAddr("8.8.8.8")); got != (Location{}) {
		t.Errorf("without a database: %+v, want empty", got)
	}
	if _, err := OpenGeoDB(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("opening a missing database succeeded")
	}
}
