package chdb_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// emptyDB opens a database that exists but has no tables yet.
func emptyDB(t *testing.T) *chdb.DB {
	t.Helper()
	db := chtest.Open(t)
	ctx := context.Background()
	for _, stmt := range []string{"DROP DATABASE `" + db.Database + "`", "CREATE DATABASE `" + db.Database + "`"} {
		if err := db.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func TestMigrateConcurrentStartsAgree(t *testing.T) {
	db := emptyDB(t)
	ctx := context.Background()
	ms, err := chdb.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	before, err := db.Status(ctx, ms)
	if err != nil {
		t.Fatalf("status of an empty database: %v", err)
	}
	if before.Current() || len(before.Pending) != len(ms) {
		t.Fatalf("empty database status = %+v, want all %d pending", before, len(ms))
	}

	// Three nodes start together.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { _, errs[i] = db.Migrate(ctx, ms) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}

	st, err := db.Status(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Current() || st.Latest != len(ms) || len(st.Applied) != len(ms) {
		t.Fatalf("status after migrate = %+v", st)
	}
	again, err := db.Migrate(ctx, ms)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v, err %v; want nothing", again, err)
	}

	var cols uint64
	err = db.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = 'events' AND name IN ('tenant_id','site_id','event_id','prop_keys','prop_values')", db.Database).Scan(&cols)
	if err != nil || cols != 5 {
		t.Fatalf("events columns found = %d (err %v), want 5", cols, err)
	}
	var engine, sortKey string
	err = db.QueryRow(ctx, "SELECT engine, sorting_key FROM system.tables WHERE database = ? AND name = 'events'", db.Database).Scan(&engine, &sortKey)
	if err != nil {
		// 18.16 has no sorting_key column; current releases do.
		err = db.QueryRow(ctx, "SELECT engine, engine_full FROM system.tables WHERE database = ? AND name = 'events'", db.Database).Scan(&engine, &sortKey)
	}
	if err != nil {
		t.Fatal(err)
	}
	if engine != "ReplacingMergeTree" || !strings.Contains(sortKey, "tenant_id, site_id") || !strings.Contains(sortKey, "event_id") {
		t.Fatalf("events engine %q sort key %q: want ReplacingMergeTree led by tenant and site, holding event_id", engine, sortKey)
	}

	// The view works: an event reaches sessions.
	batch, err := db.PrepareBatch(ctx, "INSERT INTO events (tenant_id, site_id, event_id, ts, received_at, type, name, pathname, hostname, session_id, visitor_id)")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := batch.Append(uuid.New(), uuid.New(), uuid.New(), now, now, "page", "pageview", "/", "example.com", uint64(7), uint64(9)); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("insert into events after concurrent migrations: %v", err)
	}
	var host string
	if err := db.QueryRow(ctx, "SELECT argMinMerge(hostname) FROM sessions WHERE session_id = 7").Scan(&host); err != nil || host != "example.com" {
		t.Fatalf("the visit's hostname from sessions = %q (err %v); want example.com", host, err)
	}
}

func TestMigrateAddColumnIsIdempotent(t *testing.T) {
	db := emptyDB(t)
	ctx := context.Background()
	fsys := fstest.MapFS{
		"0001_things.sql": {Data: []byte("-- a table\nCREATE TABLE IF NOT EXISTS things (id UInt64) ENGINE = MergeTree ORDER BY id;\n")},
		"0002_colour.sql": {Data: []byte("ALTER TABLE things ADD COLUMN colour String;\n")},
		// A node that applied 0002 but died before recording it leaves the column
		// behind; the same statement again must count as applied.
		"0003_colour_again.sql": {Data: []byte("ALTER TABLE things\n    ADD COLUMN colour String;\n")},
	}
	ms, err := chdb.LoadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := db.Migrate(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 3 {
		t.Fatalf("applied %v, want [1 2 3]", applied)
	}
}

func TestMigrateRefusesAnEditedMigration(t *testing.T) {
	db := emptyDB(t)
	ctx := context.Background()
	fsys := fstest.MapFS{"0001_things.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS things (id UInt64) ENGINE = MergeTree ORDER BY id;")}}
	ms, _ := chdb.LoadMigrations(fsys)
	if _, err := db.Migrate(ctx, ms); err != nil {
		t.Fatal(err)
	}
	fsys["0001_things.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS things (id UInt32) ENGINE = MergeTree ORDER BY id;")}
	ms, _ = chdb.LoadMigrations(fsys)
	_, err := db.Migrate(ctx, ms)
	if err == nil || !strings.Contains(err.Error(), "0001_things was changed") {
		t.Fatalf("err = %v, want a message naming the changed migration", err)
	}
}

func TestLoadMigrationsRejectsBadSets(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"gap", fstest.MapFS{"0001_a.sql": {Data: []byte("SELECT 1;")}, "0003_c.sql": {Data: []byte("SELECT 1;")}}, "expected version 2"},
		{"bad name", fstest.MapFS{"0001-a.sql": {Data: []byte("SELECT 1;")}}, "not named NNNN_name.sql"},
		{"empty", fstest.MapFS{"0001_a.sql": {Data: []byte("-- nothing\n")}}, "has no statements"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chdb.LoadMigrations(tt.fsys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEmbeddedMigrationsSplit(t *testing.T) {
	ms, err := chdb.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Name != "events" || len(ms[0].Statements) != 1 {
		t.Fatalf("embedded migrations = %+v", ms)
	}
	for _, m := range ms {
		for _, stmt := range m.Statements {
			// DESIGN.md: statements must also run on ClickHouse 18.16.
			for _, banned := range []string{"DateTime64", "JSONExtract", " TTL ", "toStartOfInterval", "async_insert", "IF NOT EXISTS " + "COLUMN"} {
				if strings.Contains(stmt, banned) {
					t.Errorf("migration %d uses %q, which ClickHouse 18.16 lacks", m.Version, banned)
				}
			}
		}
	}
}

func TestOpenErrorsNameTheAddress(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"not a clickhouse URL", "http://127.0.0.1:9000/pulse", `"http://127.0.0.1:9000/pulse" is not a clickhouse://host:port/database URL`},
		{"nothing listening", "clickhouse://127.0.0.1:1/pulse", "cannot reach 127.0.0.1:1"},
		{"password is not echoed", "clickhouse://u:secret@127.0.0.1:1/pulse?dial_timeout=oops", "xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := chdb.Open(ctx, tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %q: must be one line without the password", err)
			}
		})
	}
}

func TestManagedServerKeepsDataAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := func() (*chdb.Server, *chdb.DB) {
		t.Helper()
		srv, err := chdb.StartServer(ctx, chdb.ServerConfig{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		db, err := chdb.Open(ctx, srv.URL("keep"))
		if err != nil {
			srv.Stop(ctx)
			t.Fatal(err)
		}
		return srv, db
	}

	srv, db := start()
	pid := readPid(t, dir)
	if err := db.Exec(ctx, "CREATE TABLE IF NOT EXISTS kept (n UInt64) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	batch, err := db.PrepareBatch(ctx, "INSERT INTO kept (n)")
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Append(uint64(42)); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("clickhouse-server pid %d still runs after Stop", pid)
	}

	srv, db = start()
	defer srv.Stop(ctx)
	defer db.Close()
	var n uint64
	if err := db.QueryRow(ctx, "SELECT sum(n) FROM kept").Scan(&n); err != nil || n != 42 {
		t.Fatalf("after restart sum = %d, err %v; want 42 from the first run", n, err)
	}
}

func readPid(t *testing.T, dir string) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "clickhouse.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, c := range strings.TrimSpace(string(raw)) {
		pid = pid*10 + int(c-'0')
	}
	return pid
}
