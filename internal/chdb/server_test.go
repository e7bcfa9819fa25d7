package chdb_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pulse-analytics/pulse/internal/chdb"
)

// TestManagedServerNeedsItsPassword: the managed server's user has a
// password, kept in a file of mode 0600 and the same at the next start
// (users.xml holds its hash), and the server listens on its native port
// alone: no HTTP port a web page could post queries to.
func TestManagedServerNeedsItsPassword(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := chdb.StartServer(ctx, chdb.ServerConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)

	u, err := url.Parse(srv.URL("default"))
	if err != nil {
		t.Fatal(err)
	}
	password, ok := u.User.Password()
	if !ok || len(password) < 32 {
		t.Fatalf("the server's URL carries no password of 32 characters or more (%q)", chdb.Redact(srv.URL("default")))
	}
	db, err := chdb.Open(ctx, srv.URL("default"))
	if err != nil {
		t.Fatalf("with its password: %v", err)
	}
	db.Close()
	for _, who := range []*url.Userinfo{nil, url.User("default"), url.UserPassword("default", "wrong")} {
		v := *u
		v.User = who
		if db, err := chdb.Open(ctx, v.String()); err == nil {
			db.Close()
			t.Errorf("connected as %q without the password", who.String())
		}
	}

	for _, name := range []string{"users.xml", "password"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", name, fi.Mode().Perm())
		}
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "password")); err != nil || strings.TrimSpace(string(raw)) != password {
		t.Errorf("the password file holds %q (%v), the server's URL another password", raw, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "users.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), password) {
		t.Error("users.xml holds the password itself")
	}

	ports := listeningPorts(t, readPid(t, dir))
	if want := []int{mustPort(t, srv.Addr())}; fmt.Sprint(ports) != fmt.Sprint(want) {
		t.Errorf("clickhouse-server listens on TCP ports %v, want only its native port %v", ports, want)
	}

	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := chdb.StartServer(ctx, chdb.ServerConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Stop(ctx)
	if v, _ := url.Parse(again.URL("default")); v.User.String() != u.User.String() {
		t.Error("the password changed at the next start: a developer's clickhouse-client would need the new one")
	}
}

func mustPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, _ := strings.Cut(addr, ":")
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

// listeningPorts returns the TCP ports process pid listens on, from the
// kernel's socket tables and the process's descriptors.
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			f := strings.Fields(line)
			// local_address rem_address st … inode; st 0A is LISTEN.
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			ports = append(ports, int(p))
		}
	}
	return ports
}
