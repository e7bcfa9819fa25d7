package chdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	_ "embed"
)

// ServerConfig configures a managed local clickhouse-server.
type ServerConfig struct {
	// Dir holds the server's config, data and logs, in directories of mode
	// 0700 (PrivateDir). A later start with the same Dir reuses the data. Required.
	Dir string
	// Binary is the clickhouse-server (or single `clickhouse`) executable.
	// Empty: look it up with FindBinary.
	Binary string
	// StartTimeout bounds the wait for the server to answer. Default DefaultStartTimeout.
	StartTimeout time.Duration
	// StopTimeout bounds the wait for a graceful stop before the server is killed.
	// Default DefaultStopTimeout.
	StopTimeout time.Duration
	// Logger receives start and stop messages. Default: discard.
	Logger *slog.Logger
}

// Defaults for the managed server.
const (
	// DefaultStartTimeout bounds the wait for a managed server to answer.
	DefaultStartTimeout = 30 * time.Second
	// DefaultStopTimeout bounds a graceful stop before SIGKILL.
	DefaultStopTimeout = 15 * time.Second
	// startAttempts is how often a start is tried with fresh ports when the
	// chosen ports were taken between choosing and binding.
	startAttempts = 3
	// pollInterval is the pause between readiness probes.
	pollInterval = 50 * time.Millisecond
)

func (c *ServerConfig) withDefaults() {
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrNoBinary says that no ClickHouse server executable was found.
var ErrNoBinary = errors.New("clickhouse-server not found on PATH: install it (apt-get install clickhouse-server; Debian puts it in /usr/sbin, so add that to PATH) or point --clickhouse (PULSE_CLICKHOUSE) at a running server")

// FindBinary looks on PATH for clickhouse-server, then for the single
// `clickhouse` binary. It returns the path and the arguments that select server mode.
func FindBinary() (string, []string, error) {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil, nil
	}
	if p, err := exec.LookPath("clickhouse"); err == nil {
		return p, []string{"server"}, nil
	}
	return "", nil, ErrNoBinary
}

// Server is a clickhouse-server process that Pulse started and will stop.
type Server struct {
	cfg     ServerConfig
	cmd     *exec.Cmd
	tcpAddr string
	// password is the default user's (passwordFile): another local user,
	// or a page in the developer's browser, cannot query the server
	// without it.
	password string
	exited   chan struct{} // closed when the process has exited
	waitErr  error         // set before exited is closed
}

// StartServer writes a config under cfg.Dir, starts clickhouse-server on free
// loopback ports and returns once it answers queries. The server runs in its own
// process group, so a Ctrl-C in the terminal reaches Pulse only, and Pulse stops
// the server after its final flush. If Pulse dies, the kernel sends the server SIGTERM.
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	cfg.withDefaults()
	bin, args := cfg.Binary, []string(nil)
	if bin == "" {
		var err error
		if bin, args, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: data directory: %w", err)
	}
	cfg.Dir = dir
	for _, d := range []string{dir, filepath.Join(dir, "data"), filepath.Join(dir, "log")} {
		if err := PrivateDir(d, cfg.Logger); err != nil {
			return nil, fmt.Errorf("clickhouse: %w", err)
		}
	}
	stopLeftover(dir, cfg)

	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		s, err := startOnce(ctx, cfg, bin, args)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("port taken")

// privateDirMode is the mode of the directories that hold a managed server's
// data, config and logs: the owner's only, as the events are visitors' data.
const privateDirMode = 0o700

// PrivateDir creates dir, and any missing parent, with mode 0700. An existing
// dir that its group or others may use loses that access (created by an older
// version, or by hand), and log says so.
func PrivateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, privateDirMode); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("check directory %s: %w", dir, err)
	}
	if mode := fi.Mode().Perm(); mode&^privateDirMode != 0 {
		if err := os.Chmod(dir, mode&privateDirMode); err != nil {
			return fmt.Errorf("make directory %s private (mode %04o): %w", dir, mode, err)
		}
		log.Info("directory made private", "dir", dir, "old_mode", fmt.Sprintf("%04o", mode), "mode", fmt.Sprintf("%04o", mode&privateDirMode))
	}
	return nil
}

func startOnce(ctx context.Context, cfg ServerConfig, bin string, args []string) (*Server, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: choose ports: %w", err)
	}
	password, err := serverPassword(cfg.Dir)
	if err != nil {
		return nil, err
	}
	configPath, err := writeServerConfig(cfg.Dir, ports[0], password)
	if err != nil {
		return nil, err
	}
	errLog := filepath.Join(cfg.Dir, "log", "clickhouse-server.err.log")
	_ = os.Truncate(errLog, 0)

	out, err := os.OpenFile(filepath.Join(cfg.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	defer out.Close()

	cmd := exec.Command(bin, append(args, "--config-file="+configPath)...)
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("clickhouse: start %s: %w", bin, err)
	}
	s := &Server{cfg: cfg, cmd: cmd, tcpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), password: password, exited: make(chan struct{})}
	go func() { // owned by s: Stop waits for exited
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	_ = os.WriteFile(filepath.Join(cfg.Dir, pidFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o640)

	if err := s.waitReady(ctx, errLog); err != nil {
		_ = s.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	cfg.Logger.Info("clickhouse started", "binary", bin, "addr", s.tcpAddr, "dir", cfg.Dir, "pid", cmd.Process.Pid)
	return s, nil
}

// waitReady polls until the server answers a query, exits, or time runs out.
func (s *Server) waitReady(ctx context.Context, errLog string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	opts, err := parseURL(s.URL(""))
	if err != nil {
		return err
	}
	opts.Auth.Database = "default"
	opts.DialTimeout = time.Second
	for {
		select {
		case <-s.exited:
			tail := logTail(errLog)
			if strings.Contains(tail, "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("clickhouse-server exited during start (%v); its log %s says: %s", s.waitErr, errLog, tail)
		case <-ctx.Done():
			return fmt.Errorf("clickhouse-server did not answer on %s within %s; see %s", s.tcpAddr, s.cfg.StartTimeout, errLog)
		case <-time.After(pollInterval):
		}
		if conn, err := net.DialTimeout("tcp", s.tcpAddr, time.Second); err == nil {
			conn.Close()
			if db, err := dial(ctx, opts); err == nil {
				db.Close()
				return nil
			}
		}
	}
}

// URL returns the clickhouse:// URL of database on this server.
func (s *Server) URL(database string) string {
	u := &url.URL{Scheme: "clickhouse", Host: s.tcpAddr, Path: "/" + database, User: url.UserPassword("default", s.password)}
	return u.String()
}

// Addr returns the server's native-protocol address.
func (s *Server) Addr() string { return s.tcpAddr }

// Stop asks the server to shut down and waits for it; after StopTimeout it is
// killed. Stop is safe to call more than once.
func (s *Server) Stop(ctx context.Context) error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(s.cfg.StopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("clickhouse-server did not stop within %s and was killed", s.cfg.StopTimeout)
	case <-ctx.Done():
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("clickhouse-server killed: %w", ctx.Err())
	}
	_ = os.Remove(filepath.Join(s.cfg.Dir, pidFile))
	s.cfg.Logger.Info("clickhouse stopped", "dir", s.cfg.Dir)
	return nil
}

// pidFile records the managed server's pid so a later start can stop a
// leftover server of the same directory (after Pulse itself was killed).
const pidFile = "clickhouse.pid"

// passwordFile holds the managed server's password, made at the first start
// (32 hex digits), mode 0600 in the 0700 directory: the developer's
// clickhouse-client reads it (docs/clickhouse.md), nobody else can.
const passwordFile = "password"

// serverPassword reads the password of the server in dir, making it first.
func serverPassword(dir string) (string, error) {
	path := filepath.Join(dir, passwordFile)
	raw, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(raw))) >= 32 {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("clickhouse: password file: %w", err)
		}
		return strings.TrimSpace(string(raw)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("clickhouse: password file: %w", err)
	}
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	password := hex.EncodeToString(secret[:])
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("clickhouse: password file: %w", err)
	}
	return password, nil
}

// stopLeftover stops a server that an earlier Pulse started on dir and did not stop.
func stopLeftover(dir string, cfg ServerConfig) {
	raw, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || !bytes.Contains(cmdline, []byte(filepath.Join(dir, serverConfigFile))) {
		return
	}
	cfg.Logger.Warn("stopping a clickhouse-server left over from an earlier run", "pid", pid, "dir", dir)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(cfg.StopTimeout)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(pollInterval)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// freePorts asks the kernel for n free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func logTail(p string) string {
	raw, err := os.ReadFile(p)
	if err != nil || len(raw) == 0 {
		return "(empty)"
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

const (
	serverConfigFile = "config.xml"
	usersConfigFile  = "users.xml"
)

//go:embed server_config.xml.tmpl
var serverConfigText string

//go:embed server_users.xml.tmpl
var serverUsersText string

var (
	serverConfigTmpl = template.Must(template.New("config").Parse(serverConfigText))
	serverUsersTmpl  = template.Must(template.New("users").Parse(serverUsersText))
)

// writeServerConfig writes config.xml and users.xml for a server on the
// native-protocol port tcpPort (no HTTP port: Pulse does not use it, and a
// web page could post queries to it) whose default user has password.
func writeServerConfig(dir string, tcpPort int, password string) (string, error) {
	var buf bytes.Buffer
	err := serverConfigTmpl.Execute(&buf, map[string]any{"Dir": dir, "TCPPort": tcpPort})
	if err != nil {
		return "", fmt.Errorf("clickhouse: render config: %w", err)
	}
	configPath := filepath.Join(dir, serverConfigFile)
	if err := os.WriteFile(configPath, buf.Bytes(), 0o640); err != nil {
		return "", fmt.Errorf("clickhouse: write config: %w", err)
	}
	var users bytes.Buffer
	sum := sha256.Sum256([]byte(password))
	if err := serverUsersTmpl.Execute(&users, map[string]any{"PasswordSHA256": hex.EncodeToString(sum[:])}); err != nil {
		return "", fmt.Errorf("clickhouse: render users config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, usersConfigFile), users.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("clickhouse: write users config: %w", err)
	}
	return configPath, nil
}
