package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDevDataDirectoryIsPrivate starts pulse dev on a data directory an older
// version left open to its group and others, and checks that the directory and
// the managed ClickHouse's, new or old, are the owner's only (0700).
func TestDevDataDirectoryIsPrivate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "state")
	ch := filepath.Join(data, "clickhouse")
	if err := os.MkdirAll(ch, 0o700); err != nil {
		t.Fatal(err)
	}
	for dir, mode := range map[string]os.FileMode{data: 0o755, ch: 0o750} {
		if err := os.Chmod(dir, mode); err != nil { // not subject to the umask
			t.Fatal(err)
		}
	}
	p := startPulse(t, nil, "dev", "--data", data)
	p.waitReady(t)
	for _, dir := range []string{data, ch, filepath.Join(ch, "data"), filepath.Join(ch, "log")} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o700 {
			t.Errorf("%s has mode %04o, want 0700", dir, got)
		}
	}
	p.stop(t, syscall.SIGINT)
}
