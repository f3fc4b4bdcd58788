package storetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL server of a test's own, in a temporary directory on a free port,
// for tests that stop and restart the database: the shared server on ATTUNE_TEST_DATABASE_URL
// must never be disturbed, since every other test uses it. PostgreSQL refuses to run as root,
// so under root the server runs as the postgres user.
type Server struct {
	bin  string
	dir  string
	port int
	cred *syscall.Credential

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
}

// StopMode is how Stop shuts the server down, as pg_ctl stop -m names them.
type StopMode string

const (
	// Fast rolls back open transactions and disconnects clients, then shuts down cleanly.
	Fast StopMode = "fast"
	// Immediate aborts at once, as in a crash: the next start runs recovery.
	Immediate StopMode = "immediate"
)

// startTimeout bounds how long a start (with recovery after an immediate stop) may take.
const startTimeout = time.Minute

// NewServer initialises a cluster and starts it; it is stopped and its directory removed at
// cleanup, whatever the test did. Without PostgreSQL's server programs the test is skipped,
// or fails under CI=true.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := serverBinDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true and no PostgreSQL server programs: %v", err)
		}
		tb.Skipf("no PostgreSQL server programs: %v", err)
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		if s.cred, err = credentialOf("postgres"); err != nil {
			tb.Fatalf("postgres server as root: %v", err)
		}
	}
	if s.dir, err = os.MkdirTemp("", "attune-pg-"); err != nil {
		tb.Fatalf("postgres server directory: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(Immediate); err != nil {
			tb.Logf("stop postgres server: %v", err)
		}
		_ = os.RemoveAll(s.dir)
	})
	if s.port, err = freePort(); err != nil {
		tb.Fatalf("postgres server port: %v", err)
	}
	if err := s.initdb(); err != nil {
		tb.Fatalf("%v", err)
	}
	if err := s.Start(); err != nil {
		tb.Fatalf("%v", err)
	}
	return s
}

// URL is the URL of database name on this server, as its superuser.
func (s *Server) URL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: s.Addr(), Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Log is the server's log so far, for a test that failed.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

func (s *Server) initdb() error {
	data := filepath.Join(s.dir, "data")
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("give the postgres server directory to postgres: %w", err)
		}
	}
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// fsync is off: the server is crashed on purpose, never the machine, and what a process
	// crash keeps is in the page cache whatever fsync says.
	conf := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"max_connections = 300\nfsync = off\nlogging_collector = off\n", s.port, s.dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configure postgres server: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(conf); err != nil {
		return fmt.Errorf("configure postgres server: %w", err)
	}
	return nil
}

// Start starts the server and waits until it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("start postgres server: already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("start postgres server: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a ^C to the test does not crash it before cleanup, and
	// killed with the test's thread if the test itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	return s.waitAccepting(exited)
}

// waitAccepting polls until a connection and a query succeed: the port opens before
// recovery is over, and a server in recovery refuses connections.
func (s *Server) waitAccepting(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(context.Background())
			if err == nil {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres server exited while starting:\n%s", s.Log())
		case <-ctx.Done():
			return fmt.Errorf("postgres server not accepting connections within %s (%v):\n%s", startTimeout, err, s.Log())
		case <-tick.C:
		}
	}
}

// Stop shuts the server down and waits until it is gone; stopping a stopped server does
// nothing.
func (s *Server) Stop(mode StopMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	sig := syscall.SIGINT
	if mode == Immediate {
		sig = syscall.SIGQUIT
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop postgres server: %w", err)
	}
	select {
	case <-s.exited:
	case <-time.After(startTimeout):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// Restart stops the server in mode and starts it again.
func (s *Server) Restart(mode StopMode) error {
	if err := s.Stop(mode); err != nil {
		return err
	}
	return s.Start()
}

// serverBinDir finds initdb and postgres: on PATH, else Debian's /usr/lib/postgresql/<v>/bin,
// the newest version first.
func serverBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("initdb is neither on PATH nor under /usr/lib/postgresql/*/bin")
}

func credentialOf(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of %s: %w", name, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of %s: %w", name, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort asks the kernel for a loopback port nobody listens on.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
