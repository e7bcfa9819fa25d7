package chdb

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var embedded embed.FS

// Migration is one versioned schema change: the statements of one
// migrations/NNNN_name.sql file.
//
// Every statement must be idempotent, because nodes that start together may run
// the same migration at the same time: CREATE … IF NOT EXISTS, DROP … IF EXISTS.
// ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, so a plain ADD COLUMN whose
// column already exists is taken as already applied.
type Migration struct {
	Version    int
	Name       string
	Statements []string
	// Checksum is the SHA-256 of the file, recorded so an edited migration is noticed.
	Checksum string
}

// SchemaStatus says how far a database's schema is from the migrations this binary knows.
type SchemaStatus struct {
	// Applied lists the versions recorded in the database, ascending.
	Applied []int `json:"applied"`
	// Latest is the highest version this binary knows.
	Latest int `json:"latest"`
	// Pending lists known versions that are not applied yet, ascending.
	Pending []int `json:"pending"`
}

// Current reports whether every migration this binary knows has been applied.
func (s SchemaStatus) Current() bool { return len(s.Pending) == 0 }

// Migrations returns the migrations embedded in the binary, in version order.
func Migrations() ([]Migration, error) {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		return nil, err
	}
	return LoadMigrations(sub)
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// LoadMigrations reads NNNN_name.sql files from the top of fsys. Versions must
// start at 1 and have no gaps.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			return nil, fmt.Errorf("migrations: %s is not named NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		version, _ := strconv.Atoi(m[1])
		sum := sha256.Sum256(body)
		stmts := splitStatements(string(body))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migrations: %s has no statements", e.Name())
		}
		ms = append(ms, Migration{Version: version, Name: m[2], Statements: stmts, Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations: expected version %d, found %04d_%s.sql", i+1, m.Version, m.Name)
		}
	}
	return ms, nil
}

// splitStatements splits SQL text on semicolons that end a line, dropping
// comment-only lines and empty statements.
func splitStatements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			if stmt != "" {
				stmts = append(stmts, stmt)
			}
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		stmts = append(stmts, rest)
	}
	return stmts
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS ` + migrationsTable + ` (
	version UInt32,
	name String,
	checksum String,
	applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree ORDER BY version`

// migrationsTable records applied migrations, one row per version (duplicates
// from concurrent starts are harmless and merge away).
const migrationsTable = "schema_migrations"

// Migrate applies every migration in ms that the database has not recorded yet,
// in order, and returns the versions it applied. It is safe to run from several
// nodes at once: statements are idempotent and a version recorded twice is one version.
func (db *DB) Migrate(ctx context.Context, ms []Migration) ([]int, error) {
	if err := db.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("migrate: create %s: %w", migrationsTable, err)
	}
	recorded, err := db.recordedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range ms {
		if sum, ok := recorded[m.Version]; ok {
			if sum != m.Checksum {
				return applied, fmt.Errorf("migrate: migration %04d_%s was changed after it was applied; add a new migration instead", m.Version, m.Name)
			}
			continue
		}
		for i, stmt := range m.Statements {
			if err := db.Exec(ctx, stmt); err != nil && !alreadyApplied(stmt, err) {
				return applied, fmt.Errorf("migrate: %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := db.recordMigration(ctx, m); err != nil {
			return applied, fmt.Errorf("migrate: record %04d_%s: %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// recordMigration inserts m's row into the migrations table.
func (db *DB) recordMigration(ctx context.Context, m Migration) error {
	batch, err := db.PrepareBatch(ctx, "INSERT INTO "+migrationsTable+" (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	if err := batch.Append(uint32(m.Version), m.Name, m.Checksum, time.Now().UTC()); err != nil {
		batch.Abort()
		return err
	}
	return batch.Send()
}

// alreadyApplied reports whether err only says that stmt's change is already there.
func alreadyApplied(stmt string, err error) bool {
	addColumn := strings.Contains(strings.ToUpper(stmt), "ADD COLUMN")
	return addColumn && (IsCode(err, codeDuplicateColumn) ||
		IsCode(err, codeIllegalColumn) && strings.Contains(err.Error(), "already exists"))
}

// Status compares the database's recorded migrations with ms.
func (db *DB) Status(ctx context.Context, ms []Migration) (SchemaStatus, error) {
	st := SchemaStatus{Applied: []int{}, Pending: []int{}}
	if len(ms) > 0 {
		st.Latest = ms[len(ms)-1].Version
	}
	recorded, err := db.recordedMigrations(ctx)
	if err != nil {
		if IsCode(err, codeUnknownTable) {
			recorded = nil
		} else {
			return st, err
		}
	}
	for v := range recorded {
		st.Applied = append(st.Applied, v)
	}
	sort.Ints(st.Applied)
	for _, m := range ms {
		if _, ok := recorded[m.Version]; !ok {
			st.Pending = append(st.Pending, m.Version)
		}
	}
	return st, nil
}

// recordedMigrations returns the checksum each recorded version was first
// applied with (a version recorded twice by concurrent starts is compared
// with its first record, the same one on every start).
func (db *DB) recordedMigrations(ctx context.Context) (map[int]string, error) {
	rows, err := db.Query(ctx, "SELECT version, argMin(checksum, (applied_at, checksum)) FROM "+migrationsTable+" GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", migrationsTable, err)
	}
	defer rows.Close()
	recorded := map[int]string{}
	for rows.Next() {
		var (
			version uint32
			sum     string
		)
		if err := rows.Scan(&version, &sum); err != nil {
			return nil, fmt.Errorf("migrate: read %s: %w", migrationsTable, err)
		}
		recorded[int(version)] = sum
	}
	return recorded, rows.Err()
}
