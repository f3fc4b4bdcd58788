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
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-go/attune/internal/servicetest"
)

// Server is a PostgreSQL server of a test's own, in a temporary directory on a free port,
// for tests that stop and restart the database: the shared server on ATTUNE_TEST_DATABASE_URL
// must never be disturbed, since every other test uses it. PostgreSQL refuses to run as root,
// so under root the server runs as the postgres user.
type Server struct {
	*servicetest.Process
	bin  string
	dir  string
	port int
	cred *syscall.Credential
}

// StopMode is how Stop shuts the server down, as pg_ctl stop -m names them.
type StopMode string

const (
	// Fast rolls back open transactions and disconnects clients, then shuts down cleanly.
	Fast StopMode = "fast"
	// Immediate aborts at once, as in a crash: the next start runs recovery.
	Immediate StopMode = "immediate"
)

// serverTimeout bounds a start (with recovery after an immediate stop) and a stop.
const serverTimeout = time.Minute

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
	if s.port, err = servicetest.FreePort(); err != nil {
		tb.Fatalf("postgres server port: %v", err)
	}
	s.Process = servicetest.New("postgres server", filepath.Join(s.dir, "server.log"), serverTimeout, s.command, s.ping)
	tb.Cleanup(func() {
		if err := s.Stop(Immediate); err != nil {
			tb.Logf("%v", err)
		}
		if err := servicetest.KeepLogs("postgres-"+strconv.Itoa(s.port), filepath.Join(s.dir, "server.log")); err != nil {
			tb.Logf("%v", err)
		}
		_ = os.RemoveAll(s.dir)
	})
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

// Stop shuts the server down in mode and waits until it is gone; stopping a stopped server
// does nothing.
func (s *Server) Stop(mode StopMode) error {
	if mode == Immediate {
		return s.Process.Stop(syscall.SIGQUIT)
	}
	return s.Process.Stop(syscall.SIGINT)
}

// Restart stops the server in mode and starts it again.
func (s *Server) Restart(mode StopMode) error {
	if err := s.Stop(mode); err != nil {
		return err
	}
	return s.Start()
}

func (s *Server) command() *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// ping succeeds once a connection and a query do: the port opens before recovery is over,
// and a server in recovery refuses connections.
func (s *Server) ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
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
