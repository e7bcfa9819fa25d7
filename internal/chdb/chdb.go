// Package chdb connects Pulse to ClickHouse: it opens connections, applies the
// embedded schema migrations, and runs a managed local clickhouse-server for
// `pulse dev` and for tests.
package chdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DB is an open connection pool to one ClickHouse database.
type DB struct {
	driver.Conn
	// Addr is the host:port the pool dials first, for messages.
	Addr string
	// Database is the database every unqualified table name refers to.
	Database string
	// user and password are the URL's, for URL.
	user, password string
	// zones caches KnowsTimeZone.
	zones zoneCache
}

// URL is the clickhouse:// URL of db's database at its address, with the
// credentials it was opened with (Redact it before printing).
func (db *DB) URL() string {
	return db.URLAt(db.Addr)
}

// URLAt is URL with the server at addr instead (a proxy in front of it).
func (db *DB) URLAt(addr string) string {
	u := &url.URL{Scheme: "clickhouse", Host: addr, Path: "/" + db.Database}
	if db.user != "" || db.password != "" {
		u.User = url.UserPassword(db.user, db.password)
	}
	return u.String()
}

// Open connects to the ClickHouse named by rawURL (clickhouse://user:pass@host:port/db?…)
// and creates the database when it does not exist yet. The connection uses the native
// protocol with LZ4 compression unless the URL asks for another method.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	opts, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	db, err := dial(ctx, opts)
	if err == nil {
		return db, nil
	}
	if !IsCode(err, codeUnknownDatabase) {
		return nil, err
	}

	// The database is missing: create it through the server's default database.
	bootstrap := *opts
	bootstrap.Auth.Database = ""
	root, err := dial(ctx, &bootstrap)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := root.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(opts.Auth.Database)); err != nil {
		return nil, fmt.Errorf("clickhouse: create database %s on %s: %w", opts.Auth.Database, opts.Addr[0], err)
	}
	return dial(ctx, opts)
}

func dial(ctx context.Context, opts *clickhouse.Options) (*DB, error) {
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open %s: %w", opts.Addr[0], err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, opts.DialTimeout+pingTimeout)
	defer cancel()
	if err := conn.Ping(pingCtx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse: cannot reach %s: %w", opts.Addr[0], err)
	}
	return &DB{Conn: conn, Addr: opts.Addr[0], Database: opts.Auth.Database, user: opts.Auth.Username, password: opts.Auth.Password}, nil
}

// parseURL turns a clickhouse:// URL into driver options with Pulse's defaults.
func parseURL(rawURL string) (*clickhouse.Options, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "clickhouse" || u.Host == "" {
		return nil, fmt.Errorf("clickhouse: %q is not a clickhouse://host:port/database URL", Redact(rawURL))
	}
	opts, err := clickhouse.ParseDSN(rawURL)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: parse URL %s: %v", Redact(rawURL), err)
	}
	if opts.Auth.Database == "" {
		opts.Auth.Database = DefaultDatabase
	}
	if opts.Compression == nil {
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	if !u.Query().Has("dial_timeout") {
		opts.DialTimeout = DefaultDialTimeout
	}
	if !u.Query().Has("max_open_conns") {
		opts.MaxOpenConns = DefaultMaxOpenConns
	}
	opts.DialContext = dialer(opts.DialTimeout, DefaultWriteTimeout, opts.TLS)
	return opts, nil
}

// Redact returns rawURL with any password replaced, safe to log or print.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// IsCode reports whether err is a ClickHouse server exception with one of the codes.
func IsCode(err error, codes ...int32) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	for _, c := range codes {
		if ex.Code == c {
			return true
		}
	}
	return false
}

// quoteIdent quotes a ClickHouse identifier with backticks.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// ClickHouse server error codes Pulse reacts to.
const (
	codeDuplicateColumn int32 = 15 // ADD COLUMN of an existing column (current releases)
	codeIllegalColumn   int32 = 44 // ADD COLUMN of an existing column (18.16)
	codeUnknownTable    int32 = 60
	codeUnknownDatabase int32 = 81
)

// Defaults for connections.
const (
	// DefaultDatabase is used when the URL names no database.
	DefaultDatabase = "pulse"
	// DefaultDialTimeout bounds one TCP connect to ClickHouse.
	DefaultDialTimeout = 5 * time.Second
	// DefaultMaxOpenConns bounds the pool: the batcher's inserts, the auth
	// store, the jobs and the query API's statements (which package dashboard
	// bounds itself) together. A caller waits at most the dial timeout for a
	// free connection.
	DefaultMaxOpenConns = 32
	// pingTimeout is added to the dial timeout for the first round trip.
	pingTimeout = 5 * time.Second
)
