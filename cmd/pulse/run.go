package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usageText = `Pulse: live, privacy-first web analytics.

Usage:
  pulse dev      run locally; starts its own ClickHouse unless --clickhouse is set
  pulse serve    run in production against --clickhouse
  pulse migrate  apply the schema migrations to --clickhouse and exit
  pulse admin    manage users, organizations, sites, keys and share links
  pulse version  print the version

Every flag has a PULSE_* environment twin (--batch-rows is PULSE_BATCH_ROWS).
Run 'pulse COMMAND -h' for a command's flags.`

// run is the whole program; main only reports its error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{usageText}
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "admin":
		return admin(ctx, args, getenv, stdout)
	case "serve", "dev", "migrate", "version":
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usageText)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q\n\n%s", cmd, usageText)}
	}

	var o options
	if err := parseFlags(newFlagSet(cmd, &o), args, getenv); err != nil {
		return err
	}
	if cmd == "version" {
		return printVersion(stdout, o.json)
	}
	log, err := newLogger(stdout, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "migrate":
		return migrate(ctx, o, stdout)
	default:
		return serve(ctx, stop, cmd == "dev", o, stdout, log)
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usageError{fmt.Sprintf("--log-format %q: want text or json", format)}
	}
}

// migrateTimeout bounds `pulse migrate` and the migration at start-up.
const migrateTimeout = 2 * time.Minute

func migrate(ctx context.Context, o options, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	db, ms, applied, err := openMigrated(ctx, o.clickhouse)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := db.Status(ctx, ms)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(stdout).Encode(map[string]any{"database": db.Database, "applied_now": nonNil(applied), "schema": st})
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "schema of %s is current at version %d\n", db.Database, st.Latest)
	} else {
		fmt.Fprintf(stdout, "applied migrations %v to %s; schema is at version %d\n", applied, db.Database, st.Latest)
	}
	return nil
}

// openMigrated connects to the ClickHouse at chURL and applies the embedded
// migrations; it returns them and the versions it applied now.
func openMigrated(ctx context.Context, chURL string) (*chdb.DB, []chdb.Migration, []int, error) {
	ms, err := chdb.Migrations()
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := chdb.Open(ctx, chURL)
	if err != nil {
		return nil, nil, nil, err
	}
	applied, err := db.Migrate(ctx, ms)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return db, ms, applied, nil
}

func nonNil(v []int) []int {
	if v == nil {
		return []int{}
	}
	return v
}

func printVersion(w io.Writer, asJSON bool) error {
	commit := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]string{"version": version, "commit": commit, "go": runtime.Version()})
	}
	_, err := fmt.Fprintf(w, "pulse %s (commit %s, %s)\n", version, commit, runtime.Version())
	return err
}
