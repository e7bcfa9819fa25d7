package chdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// MaxCachedTimeZones bounds the time zone names whose answer a DB
// remembers; past it, names are asked again (IANA has about 600).
const MaxCachedTimeZones = 1024

// zoneCache remembers, per time zone name, whether the server loads it.
type zoneCache struct {
	mu    sync.Mutex
	known map[string]bool
}

// KnowsTimeZone reports whether the ClickHouse server can load the time
// zone name. The server has its own zone data and rules: it refuses names
// Go's time.LoadLocation takes (right/UTC, a leap-second zone, on
// ClickHouse 18.16), and a site's reports fail in every statement that
// names a zone it refuses. 18.16 has no system.time_zones, so the server
// is asked to use the zone once; the answer is kept for the DB's life.
// The error is for a server that could not be asked.
func (db *DB) KnowsTimeZone(ctx context.Context, name string) (bool, error) {
	db.zones.mu.Lock()
	known, ok := db.zones.known[name]
	db.zones.mu.Unlock()
	if ok {
		return known, nil
	}
	var s string
	err := db.QueryRow(ctx, "SELECT toString(toDateTime(0), @tz)", clickhouse.Named("tz", name)).Scan(&s)
	var ex *clickhouse.Exception
	switch {
	case err == nil:
		known = true
	case errors.As(err, &ex) && strings.Contains(ex.Message, "time zone"):
		// "Cannot load time zone …": code 1000 on 18.16, BAD_ARGUMENTS on
		// current releases.
		known = false
	default:
		return false, fmt.Errorf("clickhouse: check time zone %q: %w", name, err)
	}
	db.zones.mu.Lock()
	defer db.zones.mu.Unlock()
	if db.zones.known == nil || len(db.zones.known) >= MaxCachedTimeZones {
		db.zones.known = map[string]bool{}
	}
	db.zones.known[name] = known
	return known, nil
}
