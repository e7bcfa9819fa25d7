// Package chtest gives tests a real ClickHouse: a fresh, migrated database per
// test on the server named by PULSE_TEST_CLICKHOUSE, or on a managed
// clickhouse-server started once per test binary.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
)

// EnvURL names a running ClickHouse (clickhouse://host:port) for tests; when it
// is unset, Main starts a managed server.
const EnvURL = "PULSE_TEST_CLICKHOUSE"

// setupTimeout bounds creating and migrating one test database.
const setupTimeout = 60 * time.Second

// Main runs the tests of a package that needs ClickHouse. Call it from TestMain:
//
//	func TestMain(m *testing.M) { chtest.Main(m) }
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv(EnvURL) != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "pulse-chtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	srv, err := chdb.StartServer(context.Background(), chdb.ServerConfig{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "chtest: tests need a real ClickHouse:", err)
		return 1
	}
	defer srv.Stop(context.Background())
	os.Setenv(EnvURL, srv.URL("default"))
	return m.Run()
}

// URL creates an empty database for this test, applies Pulse's migrations to it
// and returns its clickhouse:// URL. The database is dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Fatalf("chtest: %s is unset: call chtest.Main(m) from TestMain", EnvURL)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("chtest: %s: %v", EnvURL, err)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	u.Path = "/pulse_test_" + hex.EncodeToString(suffix[:])
	dbURL := u.String()

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := chdb.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := db.Exec(ctx, "DROP DATABASE IF EXISTS `"+db.Database+"`"); err != nil {
			t.Logf("chtest: drop %s: %v", db.Database, err)
		}
		db.Close()
	})
	ms, err := chdb.Migrations()
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	if _, err := db.Migrate(ctx, ms); err != nil {
		t.Fatalf("chtest: %v", err)
	}
	return dbURL
}

// Open returns a connection to a fresh, migrated database for this test.
func Open(t testing.TB) *chdb.DB {
	t.Helper()
	dbURL := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := chdb.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
