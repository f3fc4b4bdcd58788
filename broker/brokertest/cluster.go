package brokertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// Cluster is a RabbitMQ cluster of a test's own: nodes on one machine, each a Node on ports
// of its own, sharing an Erlang cookie. The shared RabbitMQ is never touched.
type Cluster struct {
	Nodes []*Node
	home  string
}

// EnvCluster, set to 1, runs the tests on a RabbitMQ cluster of their own (make
// test-cluster): starting three nodes takes half a minute or more and much of a small
// machine, so make test leaves them out.
const EnvCluster = "ATTUNE_TEST_CLUSTER"

// NewCluster skips the test unless ATTUNE_TEST_CLUSTER=1. It starts a first node, then the others together, each joining the first at its
// first start (the first, told of no peer, waits for none), and checks that they formed one
// cluster. Everything is removed at cleanup. Without
// rabbitmq-server the test is skipped, or fails under CI=true.
func NewCluster(tb testing.TB, size int) *Cluster {
	tb.Helper()
	if os.Getenv(EnvCluster) != "1" {
		tb.Skipf("set %s=1 to run the tests on a RabbitMQ cluster of their own (make test-cluster)", EnvCluster)
	}
	home, err := os.MkdirTemp("", "attune-rabbit-cluster-")
	if err != nil {
		tb.Fatalf("rabbitmq cluster directory: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(home) })
	cookie := strings.ReplaceAll(uuid.NewString(), "-", "")
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(cookie), 0o400); err != nil {
		tb.Fatalf("rabbitmq cluster cookie: %v", err)
	}
	id := uuid.NewString()[:8]
	names := make([]string, size)
	for i := range names {
		names[i] = fmt.Sprintf("attune-c%s-%d@localhost", id, i+1)
	}
	c := &Cluster{home: home}
	for i, name := range names {
		var peers []string
		if i > 0 {
			peers = names[:1]
		}
		c.Nodes = append(c.Nodes, newNode(tb, name, home, peers))
	}
	if err := c.Nodes[0].Start(); err != nil {
		tb.Fatalf("%v", err)
	}
	var g errgroup.Group
	for _, n := range c.Nodes[1:] {
		g.Go(n.Start)
	}
	if err := g.Wait(); err != nil {
		tb.Fatalf("%v", err)
	}
	running, err := c.RunningNodes(c.Nodes[0])
	if err != nil {
		tb.Fatalf("%v", err)
	}
	if !slices.Equal(running, names) {
		tb.Fatalf("rabbitmq cluster: running nodes %v, want %v", running, names)
	}
	return c
}

// URLs lists the nodes' AMQP URLs, in order.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}
	return urls
}

// RunningNodes asks n which nodes of its cluster are running, sorted.
func (c *Cluster) RunningNodes(n *Node) ([]string, error) {
	out, err := c.Ctl(n, "cluster_status", "--formatter", "json")
	if err != nil {
		return nil, err
	}
	var st struct {
		Running []string `json:"running_nodes"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("rabbitmqctl cluster_status: %w: %s", err, out)
	}
	slices.Sort(st.Running)
	return st.Running, nil
}

// QueueLeaders asks n where the leader of each quorum queue is: queue name to node name.
func (c *Cluster) QueueLeaders(n *Node) (map[string]string, error) {
	out, err := c.Ctl(n, "list_queues", "name", "type", "leader", "--formatter", "json")
	if err != nil {
		return nil, err
	}
	var qs []struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Leader string `json:"leader"`
	}
	if err := json.Unmarshal(out, &qs); err != nil {
		return nil, fmt.Errorf("rabbitmqctl list_queues: %w: %s", err, out)
	}
	leaders := map[string]string{}
	for _, q := range qs {
		if q.Type == "quorum" {
			leaders[q.Name] = q.Leader
		}
	}
	return leaders, nil
}

// Ctl runs rabbitmqctl against n and returns its standard output. It boots an Erlang VM of
// its own, which takes seconds: tests call it a few times, not in loops.
func (c *Cluster) Ctl(n *Node, args ...string) ([]byte, error) {
	ctl, err := nodeProgram("rabbitmqctl")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctl, append([]string{"-n", n.name, "--quiet"}, args...)...)
	cmd.Env, cmd.Dir = n.env, n.dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("rabbitmqctl -n %s %s (after %s): %w: %s", n.name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, stderr.String())
	}
	return out, nil
}
