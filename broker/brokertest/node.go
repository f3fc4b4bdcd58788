package brokertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Node is a RabbitMQ node of a test's own, in a temporary directory on free ports, for tests
// that restart the broker: the shared RabbitMQ on ATTUNE_TEST_AMQP_URL must never be
// disturbed. It runs as the test's user, with its own Erlang cookie and no plugins, and reads
// neither /etc/rabbitmq's configuration nor its environment file (which name the shared
// node and its port).
type Node struct {
	name string
	dir  string
	port int
	env  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// nodeStartTimeout bounds a node's start: a few seconds on an idle machine.
const nodeStartTimeout = 2 * time.Minute

// NewNode starts a node; it is killed and its directory removed at cleanup, whatever the
// test did. Without rabbitmq-server the test is skipped, or fails under CI=true.
func NewNode(tb testing.TB) *Node {
	tb.Helper()
	if _, err := nodeProgram("rabbitmq-server"); err != nil {
		missing(tb, fmt.Sprintf("RabbitMQ server: %v", err))
	}
	dir, err := os.MkdirTemp("", "attune-rabbit-")
	if err != nil {
		tb.Fatalf("rabbitmq node directory: %v", err)
	}
	n := &Node{name: "attune-test-" + uuid.NewString()[:8] + "@localhost", dir: dir}
	tb.Cleanup(func() {
		n.Kill()
		_ = os.RemoveAll(dir)
	})
	if err := n.configure(); err != nil {
		tb.Fatalf("%v", err)
	}
	if err := n.Start(); err != nil {
		tb.Fatalf("%v", err)
	}
	return n
}

func (n *Node) configure() error {
	var dist int
	var err error
	if n.port, err = freePort(); err != nil {
		return fmt.Errorf("rabbitmq node port: %w", err)
	}
	if dist, err = freePort(); err != nil {
		return fmt.Errorf("rabbitmq node port: %w", err)
	}
	files := map[string]string{
		"enabled_plugins":   "[].\n",
		"rabbitmq-env.conf": "",
		"rabbitmq.conf":     fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\n", n.port),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("configure rabbitmq node: %w", err)
		}
	}
	n.env = append(os.Environ(),
		"HOME="+n.dir, // the Erlang cookie is made here, shared by the node and rabbitmqctl
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(n.dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(n.dir, "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(n.dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(n.dir, "rabbitmq.conf"),
		"ERL_FLAGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
	return nil
}

// URL is the node's AMQP URL.
func (n *Node) URL() string { return "amqp://guest:guest@" + n.Addr() + "/" }

// Addr is the node's AMQP host:port.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// Name is the node's Erlang name, for rabbitmqctl -n.
func (n *Node) Name() string { return n.name }

// Log is what the node wrote to its console so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "console.log"))
	return string(b)
}

// Start starts the node and waits until it takes AMQP connections.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return errors.New("start rabbitmq node: already running")
	}
	server, err := nodeProgram("rabbitmq-server")
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(n.dir, "console.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("start rabbitmq node: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(server)
	cmd.Env, cmd.Dir = n.env, n.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that Kill reaches the Erlang VM under the start script.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start rabbitmq node: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.cmd, n.exited = cmd, exited
	return n.waitAccepting(exited)
}

// waitAccepting polls until an AMQP connection succeeds: the port opens a little before the
// node takes logins.
func (n *Node) waitAccepting(exited <-chan struct{}) error {
	deadline := time.After(nodeStartTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := amqp.DialConfig(n.URL(), amqp.Config{Dial: amqp.DefaultDial(time.Second)})
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("rabbitmq node exited while starting:\n%s", n.Log())
		case <-deadline:
			return fmt.Errorf("rabbitmq node not taking connections within %s (%v):\n%s", nodeStartTimeout, err, n.Log())
		case <-tick.C:
		}
	}
}

// Stop stops the node as an operator would (rabbitmqctl stop: connections closed, durable
// queues and persistent messages kept) and waits until it is gone.
func (n *Node) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeStartTimeout)
	defer cancel()
	if out, err := n.ctl(ctx, "stop"); err != nil {
		return fmt.Errorf("rabbitmqctl -n %s stop: %w\n%s", n.name, err, out)
	}
	select {
	case <-n.exited:
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq node still running %s after rabbitmqctl stop", nodeStartTimeout)
	}
	n.cmd = nil
	return nil
}

// Restart stops the node and starts it again.
func (n *Node) Restart() error {
	if err := n.Stop(); err != nil {
		return err
	}
	return n.Start()
}

// Kill ends the node at once with SIGKILL, as a crash would.
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.exited
	n.cmd = nil
}

// ctl runs rabbitmqctl against this node.
func (n *Node) ctl(ctx context.Context, args ...string) ([]byte, error) {
	ctl, err := nodeProgram("rabbitmqctl")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, ctl, append([]string{"-n", n.name}, args...)...)
	cmd.Env, cmd.Dir = n.env, n.dir
	return cmd.CombinedOutput()
}

// nodeProgram finds a RabbitMQ program. Debian's /usr/sbin entries are wrappers that switch
// to the rabbitmq user and its home, where this node's settings would not follow; the
// programs behind them are used when present.
func nodeProgram(name string) (string, error) {
	if p := filepath.Join("/usr/lib/rabbitmq/bin", name); fileExists(p) {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is not installed: %w", name, err)
	}
	return p, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
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
