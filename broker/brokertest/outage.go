package brokertest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Outage takes the broker away and brings it back.
type Outage interface {
	Stop()
	Start(tb testing.TB)
}

// EnvRestartBroker, set to 1, allows tests to stop and start the local RabbitMQ itself. Such
// tests take the broker away from every other test, so they run alone (make
// test-broker-restart) and are skipped otherwise.
const EnvRestartBroker = "ATTUNE_TEST_RESTART_BROKER"

// RabbitMQApp stops and starts the local RabbitMQ application with rabbitmqctl: connections
// are closed and the listener goes away, as in a broker restart, while the Erlang node stays
// up so that the restart takes seconds. Durable queues and persistent messages survive it.
type RabbitMQApp struct {
	tb   testing.TB
	addr string
}

// RestartableRabbitMQ skips the test unless ATTUNE_TEST_RESTART_BROKER=1. It makes sure the
// broker is running again when the test ends, whatever happened.
func RestartableRabbitMQ(tb testing.TB, addr string) *RabbitMQApp {
	tb.Helper()
	if os.Getenv(EnvRestartBroker) != "1" {
		tb.Skipf("set %s=1 to let this test stop and start the local RabbitMQ (make test-broker-restart)", EnvRestartBroker)
	}
	r := &RabbitMQApp{tb: tb, addr: addr}
	tb.Cleanup(func() { r.Start(tb) })
	return r
}

// Stop stops the RabbitMQ application.
func (r *RabbitMQApp) Stop() {
	r.tb.Helper()
	r.ctl("stop_app")
}

// Start starts the RabbitMQ application and waits until it accepts connections.
func (r *RabbitMQApp) Start(tb testing.TB) {
	tb.Helper()
	r.ctl("start_app")
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("RabbitMQ did not listen on %s within 60s of start_app", r.addr)
		}
		time.Sleep(100 * time.Millisecond) // waiting on a port that announces nothing
	}
}

func (r *RabbitMQApp) ctl(verb string) {
	r.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", verb).CombinedOutput()
	if err != nil {
		r.tb.Fatalf("rabbitmqctl %s: %v\n%s", verb, err, out)
	}
}
