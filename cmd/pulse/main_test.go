package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

var update = flag.Bool("update", false, "rewrite README.md's configuration table from the flags")

func TestREADMEConfigTableMatchesFlags(t *testing.T) {
	const begin, end = "<!-- flags:begin -->\n", "<!-- flags:end -->"
	path := filepath.Join("..", "..", "README.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q section", strings.TrimSpace(begin), end)
	}
	want := configTable()
	if got := readme[i+len(begin) : j]; got != want {
		if *update {
			if err := os.WriteFile(path, []byte(readme[:i+len(begin)]+want+readme[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("README.md's configuration table is out of date; run: go test ./cmd/pulse -run TestREADMEConfigTable -update\nwant:\n%s", want)
	}
}

func TestFlagsHaveEnvironmentTwins(t *testing.T) {
	env := map[string]string{
		"PULSE_LISTEN":         "127.0.0.1:9999",
		"PULSE_BATCH_ROWS":     "77",
		"PULSE_BATCH_INTERVAL": "250ms",
		"PULSE_LOG_FORMAT":     "json",
	}
	var o options
	fs := newFlagSet("dev", &o)
	if err := parseFlags(fs, []string{"--listen", "127.0.0.1:1234"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:1234" {
		t.Errorf("listen = %q: the command line must win over PULSE_LISTEN", o.listen)
	}
	if o.batchRows != 77 || o.batchInterval != 250*time.Millisecond || o.logFormat != "json" {
		t.Errorf("from the environment: rows %d interval %s format %q", o.batchRows, o.batchInterval, o.logFormat)
	}
	if o.data != defaultData || o.clickhouse != "" {
		t.Errorf("defaults: data %q clickhouse %q", o.data, o.clickhouse)
	}

	err := parseFlags(newFlagSet("serve", &options{}), nil, func(k string) string {
		return map[string]string{"PULSE_BATCH_ROWS": "many"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), `PULSE_BATCH_ROWS="many"`) {
		t.Fatalf("bad environment value: err = %v, want it to name the variable", err)
	}
}

func TestRunRejectsUnknownCommandsAndFlags(t *testing.T) {
	for _, args := range [][]string{nil, {"launch"}, {"serve", "--nope"}, {"serve", "extra"}, {"dev", "--log-level", "loud"}} {
		err := run(context.Background(), args, func(string) string { return "" }, io.Discard)
		if _, ok := err.(usageError); !ok {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version", "--json"}, func(string) string { return "" }, &out); err != nil || !strings.Contains(out.String(), `"version":"dev"`) {
		t.Errorf("version --json = %q, %v", out.String(), err)
	}
}

func TestMigrateCommand(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	if err := db.Exec(ctx, "DROP TABLE schema_migrations"); err != nil {
		t.Fatal(err)
	}
	dbURL := db.URL()
	var out bytes.Buffer
	if err := run(ctx, []string{"migrate", "--clickhouse", dbURL, "--json"}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"applied_now":[1,`) && !strings.Contains(out.String(), `"applied_now":[1]`) {
		t.Fatalf("migrate --json = %s, want migration 1 applied", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"migrate"}, func(k string) string { return map[string]string{"PULSE_CLICKHOUSE": dbURL}[k] }, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "is current") {
		t.Fatalf("second migrate said %q", out.String())
	}
}

// pulseBinary builds the pulse command once per test run.
var pulseBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "pulse-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "pulse")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is a running pulse binary.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error
	stdout  *syncBuffer
	stderr  *syncBuffer
	base    string
	dataDir string
}

type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	grew chan struct{} // closed by the next write; nil when no one waits
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.grew != nil {
		close(s.grew)
		s.grew = nil
	}
	return n, err
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitFor returns re's first match in the output, waiting for more output
// until there is one, the process has exited, or timeout has passed (nil).
// The process's output reaches the buffer through a pipe, so what it printed
// before it answered a request may not be there yet when the answer is.
func (s *syncBuffer) waitFor(re *regexp.Regexp, exited <-chan struct{}, timeout time.Duration) []string {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if m := re.FindStringSubmatch(s.b.String()); m != nil {
			s.mu.Unlock()
			return m
		}
		if s.grew == nil {
			s.grew = make(chan struct{})
		}
		grew := s.grew
		s.mu.Unlock()
		select {
		case <-grew:
		case <-exited:
			return re.FindStringSubmatch(s.String())
		case <-deadline.C:
			return nil
		}
	}
}

func startPulse(t testing.TB, env []string, args ...string) *process {
	t.Helper()
	bin, err := pulseBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	// Port 0: pulse binds a port the kernel picks and logs it (waitReady
	// reads it), so no other process can take the port between a test
	// choosing it and pulse binding it.
	args = append(args, "--listen", "127.0.0.1:0")
	if args[0] == "serve" || args[0] == "dev" {
		if i := slices.Index(args, "--data"); i >= 0 {
			p.dataDir = args[i+1]
		} else {
			p.dataDir = t.TempDir() // never the package directory
			args = append(args, "--data", p.dataDir)
		}
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// backgroundWait bounds a test's wait for what the server does in the
// background (a batch flush, a metadata refresh): generous, because on a
// loaded 2-core machine these take longer than their intervals, and what
// never happens fails all the same.
const backgroundWait = 60 * time.Second

// listening is the log line that says where pulse listens.
var listening = regexp.MustCompile(`msg="pulse listening" url=(\S+)`)

// waitReady waits for pulse to say where it listens (p.base) and then for
// /readyz to answer 200.
func (p *process) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("pulse exited (%v) before it was ready; stdout:\n%s\nstderr:\n%s", p.waitErr, p.stdout, p.stderr)
		default:
		}
		if p.base == "" {
			if m := listening.FindStringSubmatch(p.stdout.String()); m != nil {
				p.base = m[1]
			} else {
				time.Sleep(50 * time.Millisecond)
				continue
			}
		}
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pulse not ready within 60s; stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
}

// stop sends sig and waits for the exit, failing the test if pulse exits non-zero.
func (p *process) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Fatalf("pulse exited with %v after %s; output:\n%s\n%s", p.waitErr, sig, p.stdout, p.stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("pulse did not exit within 60s of %s", sig)
	}
}

func (p *process) postEvents(t *testing.T, n int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"type":"page","url":"https://example.com/p/%d"}`, i)
	}
	b.WriteString("]")
	resp, err := http.Post(p.base+"/v1/events?site="+p.siteKey(t), "text/plain", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST /v1/events = %d %s", resp.StatusCode, body)
	}
}

var siteKeyLine = regexp.MustCompile(`site key: (pk_\S+)`)

// siteKey is the demo site key `pulse dev` printed.
func (p *process) siteKey(t testing.TB) string {
	t.Helper()
	m := p.stdout.waitFor(siteKeyLine, p.exited, 10*time.Second)
	if m == nil {
		t.Fatalf("pulse dev printed no site key:\n%s", p.stdout)
	}
	return m[1]
}

func countEvents(t *testing.T, db *chdb.DB) uint64 {
	t.Helper()
	var n uint64
	if err := db.QueryRow(context.Background(), "SELECT count() FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSIGTERMLosesNoBufferedEvents(t *testing.T) {
	db := chtest.Open(t)
	dbURL := db.URL()
	// A batch that neither fills nor times out: events stay in the batcher until shutdown.
	p := startPulse(t, nil, "dev", "--clickhouse", dbURL, "--batch-interval", "1h", "--batch-rows", "1000000")
	p.waitReady(t)
	for range 5 {
		p.postEvents(t, 200)
	}
	if n := countEvents(t, db); n != 0 {
		t.Fatalf("%d events already in ClickHouse before shutdown; the test needs them buffered", n)
	}
	p.stop(t, syscall.SIGTERM)
	if n := countEvents(t, db); n != 1000 {
		t.Fatalf("after SIGTERM ClickHouse holds %d events, want all 1000 accepted", n)
	}
	if !strings.Contains(p.stdout.String(), "flushing buffered events before shutdown") {
		t.Fatalf("no final flush in the log:\n%s", p.stdout)
	}
}

var managedAddr = regexp.MustCompile(`msg="clickhouse started" binary=\S+ addr=(\S+)`)

func TestDevManagesItsOwnClickHouse(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()

	p := startPulse(t, nil, "dev", "--data", data)
	p.waitReady(t)
	p.postEvents(t, 3) // accepted events are written by the batcher or, at the latest, by the final flush of Ctrl-C
	p.stop(t, syscall.SIGINT)
	if pids := processesUsing(t, data); len(pids) > 0 {
		t.Fatalf("processes still running on %s after Ctrl-C: %v", data, pids)
	}

	// A second start reuses the same data.
	p = startPulse(t, nil, "dev", "--data", data)
	p.waitReady(t)
	m := managedAddr.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no managed clickhouse address in the log:\n%s", p.stdout)
	}
	// The managed server's password is in the data directory (docs/clickhouse.md).
	password, err := os.ReadFile(filepath.Join(data, "clickhouse", "password"))
	if err != nil {
		t.Fatal(err)
	}
	dbURL := (&url.URL{Scheme: "clickhouse", User: url.UserPassword("default", strings.TrimSpace(string(password))), Host: m[1], Path: "/" + chdb.DefaultDatabase}).String()
	db, err := chdb.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	n := countEvents(t, db)
	db.Close()
	if n != 3 {
		t.Fatalf("second run sees %d events, want the 3 of the first run", n)
	}
	p.stop(t, syscall.SIGINT)
	if pids := processesUsing(t, data); len(pids) > 0 {
		t.Fatalf("processes still running on %s after Ctrl-C: %v", data, pids)
	}
}

// processesUsing lists pids whose command line mentions dir.
func processesUsing(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestStartupErrorsAreOneClearLine(t *testing.T) {
	emptyPath := t.TempDir()
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"no clickhouse binary", []string{"PATH=" + emptyPath}, []string{"dev", "--data", t.TempDir()},
			[]string{"clickhouse-server not found on PATH", "apt-get install clickhouse-server", "--clickhouse"}},
		{"nothing at the address", nil, []string{"serve", "--clickhouse", "clickhouse://127.0.0.1:1/pulse"},
			[]string{"cannot reach 127.0.0.1:1"}},
		{"not a clickhouse URL", nil, []string{"serve", "--clickhouse", "postgres://db:5432/pulse"},
			[]string{`"postgres://db:5432/pulse" is not a clickhouse://host:port/database URL`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startPulse(t, tt.env, tt.args...)
			<-p.exited
			if p.waitErr == nil {
				t.Fatal("pulse exited 0")
			}
			stderr := strings.TrimSpace(p.stderr.String())
			if strings.Count(stderr, "\n") != 0 || strings.Contains(stderr, "goroutine") {
				t.Fatalf("stderr is not one line:\n%s", stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Fatalf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
}

func TestHealthReadyAndMetrics(t *testing.T) {
	db := chtest.Open(t)
	dbURL := db.URL()
	p := startPulse(t, nil, "serve", "--clickhouse", dbURL)
	p.waitReady(t)

	get := func(path string) (int, string) {
		resp, err := http.Get(p.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	get("/v1/no/such/endpoint") // the web UI answers other unknown paths with its page
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{"go_goroutines ", "process_resident_memory_bytes ", `pulse_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`route="unmatched",status="404"`, "pulse_ingest_events_received_total 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// A schema behind the binary makes /readyz answer 503, with the reason
	// in the log only.
	if err := db.Exec(context.Background(), "DROP TABLE schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/readyz"); code != 503 || body != `{"status":"not ready"}` {
		t.Fatalf("/readyz with an unmigrated schema = %d %s", code, body)
	}
	if p.stdout.waitFor(regexp.MustCompile(`level=WARN msg="not ready" reason=".*run pulse migrate`), p.exited, 10*time.Second) == nil {
		t.Fatalf("no reason logged for /readyz with an unmigrated schema:\n%s", p.stdout)
	}
	p.stop(t, syscall.SIGTERM)
	if strings.Contains(p.stdout.String(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", p.stdout)
	}
}
