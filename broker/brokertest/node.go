package brokertest

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/attune-go/attune/internal/servicetest"
)

// Node is a RabbitMQ node of a test's own, in a temporary directory on free ports, for tests
// that restart the broker: the shared RabbitMQ on ATTUNE_TEST_AMQP_URL must never be
// disturbed. It runs as the test's user, with its own Erlang cookie and no plugins, and reads
// neither /etc/rabbitmq's configuration nor its environment file (which name the shared
// node and its port).
type Node struct {
	*servicetest.Process
	name string
	dir  string
	port int
	env  []string
}

// nodeTimeout bounds a node's start (a few seconds on an idle machine) and its stop.
const nodeTimeout = 2 * time.Minute

// NewNode starts a node; it is killed and its directory removed at cleanup, whatever the
// test did. Without rabbitmq-server the test is skipped, or fails under CI=true.
func NewNode(tb testing.TB) *Node {
	tb.Helper()
	n := newNode(tb, "attune-test-"+uuid.NewString()[:8]+"@localhost", "", nil)
	if err := n.Start(); err != nil {
		tb.Fatalf("%v", err)
	}
	return n
}

// newNode prepares a node without starting it. home holds the Erlang cookie, shared by the
// nodes of a cluster (empty: the node's own directory, where Erlang makes one); peers are
// the names of the cluster's nodes, which it joins when it first starts.
func newNode(tb testing.TB, name, home string, peers []string) *Node {
	tb.Helper()
	server, err := nodeProgram("rabbitmq-server")
	if err != nil {
		missing(tb, fmt.Sprintf("RabbitMQ server: %v", err))
	}
	dir, err := os.MkdirTemp("", "attune-rabbit-")
	if err != nil {
		tb.Fatalf("rabbitmq node directory: %v", err)
	}
	n := &Node{name: name, dir: dir}
	n.Process = servicetest.New("rabbitmq node "+name, filepath.Join(dir, "console.log"), nodeTimeout, func() *exec.Cmd {
		cmd := exec.Command(server)
		cmd.Env, cmd.Dir = n.env, n.dir
		return cmd
	}, n.dial)
	tb.Cleanup(func() {
		n.Kill()
		logs, _ := filepath.Glob(filepath.Join(dir, "log", "*"))
		if err := servicetest.KeepLogs("rabbitmq-"+n.name, append(logs, filepath.Join(dir, "console.log"))...); err != nil {
			tb.Logf("%v", err)
		}
		_ = os.RemoveAll(dir)
	})
	if err := n.configure(cmp.Or(home, dir), peers); err != nil {
		tb.Fatalf("%v", err)
	}
	return n
}

func (n *Node) configure(home string, peers []string) error {
	var dist int
	var err error
	if n.port, err = servicetest.FreePort(); err != nil {
		return fmt.Errorf("rabbitmq node port: %w", err)
	}
	if dist, err = servicetest.FreePort(); err != nil {
		return fmt.Errorf("rabbitmq node port: %w", err)
	}
	conf := fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\n", n.port)
	if len(peers) > 0 {
		// At its first start a node joins the cluster of the first of its peers that is up.
		conf += "cluster_formation.peer_discovery_backend = classic_config\n"
		for i, p := range peers {
			conf += fmt.Sprintf("cluster_formation.classic_config.nodes.%d = %s\n", i+1, p)
		}
	}
	files := map[string]string{
		"enabled_plugins":   "[].\n",
		"rabbitmq-env.conf": "",
		"rabbitmq.conf":     conf,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("configure rabbitmq node: %w", err)
		}
	}
	n.env = append(os.Environ(),
		"HOME="+home, // the Erlang cookie is there, for the node, its peers and rabbitmqctl -n
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

// Name is the node's Erlang name, as rabbitmqctl -n takes it.
func (n *Node) Name() string { return n.name }

// dial succeeds once the node takes an AMQP login: the port opens a little before it does.
func (n *Node) dial(context.Context) error {
	conn, err := amqp.DialConfig(n.URL(), amqp.Config{Dial: amqp.DefaultDial(time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}

// Stop stops the node as a service manager would, with SIGTERM to its start script, which
// passes it on to the Erlang VM: connections closed, durable queues and persistent messages
// kept. (rabbitmqctl stop does the same, but boots an Erlang VM of its own first, which took
// up to a minute on a loaded two-core machine.) It waits until the node is gone.
func (n *Node) Stop() error { return n.Process.Stop(syscall.SIGTERM) }

// Restart stops the node and starts it again.
func (n *Node) Restart() error {
	if err := n.Stop(); err != nil {
		return err
	}
	return n.Start()
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
