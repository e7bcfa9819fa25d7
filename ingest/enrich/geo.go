package enrich

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Location is where an IP address is, as far as the database knows.
type Location struct {
	Country string // ISO 3166-1 alpha-2, upper case
	Region  string // subdivision name (or ISO code when the database has no name)
	City    string
}

// GeoDB looks addresses up in a MaxMind-format (.mmdb) database, read with
// github.com/oschwald/maxminddb-golang. Both the GeoIP2/GeoLite2 layout
// (country.iso_code, subdivisions, city.names) and the flat layout of the
// ip-location-db databases (country_code, state1, city) are understood.
type GeoDB struct {
	r    *maxminddb.Reader
	flat bool
}

// OpenGeoDB opens the database at path.
func OpenGeoDB(path string) (*GeoDB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip database %s: %w", path, err)
	}
	// GeoIP2 and GeoLite2 name their type after themselves; other producers
	// use the flat layout.
	flat := !strings.HasPrefix(r.Metadata.DatabaseType, "GeoIP2") && !strings.HasPrefix(r.Metadata.DatabaseType, "GeoLite2") &&
		!strings.HasPrefix(r.Metadata.DatabaseType, "DBIP")
	return &GeoDB{r: r, flat: flat}, nil
}

// Close releases the database.
func (g *GeoDB) Close() error { return g.r.Close() }

type maxmindRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
}

type flatRecord struct {
	CountryCode string `maxminddb:"country_code"`
	State1      string `maxminddb:"state1"`
	City        string `maxminddb:"city"`
}

// Lookup returns the location of addr; an unknown address has an empty one.
func (g *GeoDB) Lookup(addr netip.Addr) Location {
	if g == nil || !addr.IsValid() {
		return Location{}
	}
	res := g.r.Lookup(addr.Unmap())
	if g.flat {
		var rec flatRecord
		if res.Decode(&rec) != nil {
			return Location{}
		}
		return Location{Country: strings.ToUpper(rec.CountryCode), Region: rec.State1, City: rec.City}
	}
	var rec maxmindRecord
	if res.Decode(&rec) != nil {
		return Location{}
	}
	loc := Location{Country: strings.ToUpper(rec.Country.ISOCode), City: rec.City.Names["en"]}
	if len(rec.Subdivisions) > 0 {
		loc.Region = rec.Subdivisions[0].Names["en"]
		if loc.Region == "" {
			loc.Region = rec.Subdivisions[0].ISOCode
		}
	}
	return loc
}
