package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/store/storetest"
)

// The fault suite (make test-faults; docs/reliability.md): two processes of each role on a
// PostgreSQL and a RabbitMQ of the suite's own, a steady webhook load, faults injected on a
// timeline, then checks of what the promises say from outside: the database, the answers the
// load got, the marks the actions left and /proc.

// envFaults, set to 1, runs the fault suite. It restarts services of its own, never the
// shared ones, but it takes minutes and most of a small machine, so make test leaves it out.
const envFaults = "ATTUNE_TEST_FAULTS"

const (
	// requestBound is how long a webhook request may take to be answered, whatever the
	// fault: the bound the API promises (docs/reliability.md).
	requestBound = 5 * time.Second
	// settleBound is how long after the last fault everything must have settled.
	settleBound = 30 * time.Second
	// giveUpAfter is how long after the last fault the suite waits before it reports what
	// has still not settled.
	giveUpAfter = 90 * time.Second
	// orphanGrace is how long an action's process may outlive its killed worker: the
	// promise's second, plus what the measurement itself needs. The kill's time is read just
	// before the signal is sent (on a loaded machine the test's goroutine may wait a few
	// milliseconds for a CPU in between, which counts against the action), and the marks'
	// clock, /proc/uptime, counts hundredths of a second. The /proc watch adds nothing: it
	// records times at which a process was seen alive.
	orphanGrace = time.Second + 50*time.Millisecond
	// loadAfterFaults is how long the load goes on after the last fault.
	loadAfterFaults = 10 * time.Second
	// restartAfter is how long a killed process stays down.
	restartAfter = 3 * time.Second

	loadPerSec  = 55
	queuedEvery = 11 // 5 of the 55 webhooks a second go to the action under a policy
)

// faultRun is one scenario: its cluster, its load, and what happened when.
type faultRun struct {
	t      *testing.T
	name   string
	perSec int
	pg     *storetest.Server
	runID  string
	marks  string
	dbURL  string
	c      *cluster
	load   *webhookLoad
	begin  time.Time
	// beginUptime is begin on the clock of the marks.
	beginUptime float64
	// stopWatch ends the watches of killed workers' actions.
	stopWatch chan struct{}
	// extraChecks, when a timeline sets it, adds the scenario's own checks to the report.
	extraChecks func() []faultCheck

	mu     sync.Mutex
	faults []faultEvent
	kills  []*workerKill
}

// faultEvent is one fault: when it was injected and when what it took away was back.
type faultEvent struct {
	what string
	note string
	at   time.Time
	back func() time.Time
	err  error
}

// TestFaults runs the scenarios one after the other on one PostgreSQL server and one
// RabbitMQ node, each with a database and a namespace of its own.
func TestFaults(t *testing.T) {
	if os.Getenv(envFaults) != "1" {
		t.Skipf("set %s=1 to run the fault suite (make test-faults)", envFaults)
	}
	pg := storetest.NewServer(t)
	rabbit := brokertest.NewNode(t)
	checks := map[string][]faultCheck{}
	amqp := []string{"--amqp-url=" + rabbit.URL()}
	for _, sc := range []faultScenario{
		{name: "kills", timeline: func(s *faultRun) { killsTimeline(s, rabbit) }, broker: amqp, perSec: loadPerSec},
		{name: "pgdown", timeline: postgresDownTimeline, broker: amqp, perSec: loadPerSec},
	} {
		t.Run(sc.name, func(t *testing.T) { checks[sc.name] = runFaultScenario(t, pg, sc) })
	}
	t.Logf("%s", summarize(checks, "kills", "pgdown"))
}

// faultScenario is what a scenario runs on and what happens to it.
type faultScenario struct {
	name     string
	timeline func(*faultRun)
	// broker holds the flags that point the processes at the scenario's RabbitMQ.
	broker []string
	// perSec is the load's rate, in webhooks a second.
	perSec int
}

// killsTimeline: after a warm-up, every 8 s one fault: SIGKILL of an api, a sensor, an
// executor and the busiest worker (each restarted 3 s later), a RabbitMQ restart, and a
// PostgreSQL crash and restart.
func killsTimeline(s *faultRun, rabbit *brokertest.Node) {
	s.waitUntil(10 * time.Second)
	s.killAndRestart("api")
	s.waitUntil(18 * time.Second)
	s.killAndRestart("sensor")
	s.waitUntil(26 * time.Second)
	s.killAndRestart("executor")
	s.waitUntil(34 * time.Second)
	s.killAndRestart("worker")
	s.waitUntil(42 * time.Second)
	s.service("RabbitMQ restart", func() (string, error) { return stopStart(rabbit.Stop, rabbit.Start) })
	s.waitUntil(50 * time.Second)
	s.service("PostgreSQL crash and restart", func() (string, error) {
		return stopStart(func() error { return s.pg.Stop(storetest.Immediate) }, s.pg.Start)
	})
}

// stopStart stops and starts a service and says how long each took.
func stopStart(stop, start func() error) (string, error) {
	at := time.Now()
	if err := stop(); err != nil {
		return "", err
	}
	stopped := time.Now()
	err := start()
	return fmt.Sprintf("stop %.1fs, start %.1fs", stopped.Sub(at).Seconds(), time.Since(stopped).Seconds()), err
}

// postgresDownTimeline: after a warm-up, PostgreSQL stopped for 60 s.
func postgresDownTimeline(s *faultRun) {
	s.waitUntil(10 * time.Second)
	s.service("PostgreSQL down 60 s", func() (string, error) {
		return stopStart(func() error {
			if err := s.pg.Stop(storetest.Fast); err != nil {
				return err
			}
			s.waitUntil(70 * time.Second)
			return nil
		}, s.pg.Start)
	})
}

// runFaultScenario runs one scenario and returns its checks, once it has reported them.
func runFaultScenario(t *testing.T, pg *storetest.Server, sc faultScenario) []faultCheck {
	name := sc.name
	s := &faultRun{t: t, name: name, perSec: sc.perSec, pg: pg, runID: name + "-" + uuid.NewString()[:8],
		marks: filepath.Join(t.TempDir(), "marks"), dbURL: pg.URL("attune_" + name), stopWatch: make(chan struct{})}
	// Registered first, so run last: whatever happened, no process of the scenario stays.
	t.Cleanup(func() {
		if left := killLeftovers(s.runID, 0); len(left) > 0 {
			t.Logf("killed %d processes of the scenario still alive at the end", len(left))
		}
	})
	s.c = newCluster(t, "", []string{envMarks + "=" + s.marks, envRun + "=" + s.runID}, append(slices.Clone(sc.broker),
		"--database-url="+s.dbURL, "--amqp-namespace="+name, "--packs-dir="+faultsPacksDir(t),
		"--worker-heartbeat=1s", "--worker-timeout=5s", "--worker-concurrency=40")...)
	s.c.incarnationEnv = envIncarnation
	s.c.start("api", "api", "sensor", "sensor", "executor", "executor", "worker", "worker")
	s.c.supervise()
	pool, err := pgxpool.New(context.Background(), s.dbURL)
	if err != nil {
		t.Fatalf("connect to the scenario's database: %v", err)
	}
	t.Cleanup(pool.Close)

	s.load = newWebhookLoad(s.c, s.perSec, queuedEvery)
	s.begin, s.beginUptime = time.Now(), uptime()
	s.load.start()
	sc.timeline(s)
	last := s.lastFault()
	<-time.After(time.Until(last.Add(loadAfterFaults)))
	s.load.stopLoad()
	settled := s.settle(pool, last)
	close(s.stopWatch)
	for _, k := range s.kills {
		<-k.done
	}

	ev, err := collectEvidence(pool, s.marks)
	if err != nil {
		t.Fatalf("collect the evidence: %v", err)
	}
	s.c.stopAll()
	leftovers := killLeftovers(s.runID, orphanGrace)
	return s.report(ev, settled, last, leftovers)
}

// waitUntil waits until offset after the load began: the timeline is a schedule.
func (s *faultRun) waitUntil(offset time.Duration) {
	<-time.After(time.Until(s.begin.Add(offset)))
}

// killAndRestart kills a process of role with SIGKILL (the worker running the most actions,
// the first of the others), and has it started again restartAfter later.
func (s *faultRun) killAndRestart(role string) {
	m := s.pick(role)
	inc := m.incarnation()
	if role == "worker" {
		// The watch starts before the signal, its clocks read just before it is sent: what
		// it measures counts from no later than the kill, and it looks at the actions at once
		// rather than once the worker's exit has been seen.
		before := actionsOf(scanProcs(s.runID), inc)
		k := watchKill(s.runID, inc, before, time.Now(), uptime(), s.stopWatch)
		s.mu.Lock()
		s.kills = append(s.kills, k)
		s.mu.Unlock()
	}
	at, err := m.signal(syscall.SIGKILL, 30*time.Second)
	m.keepUp(restartAfter)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faultEvent{what: "SIGKILL " + inc, at: at, err: err, back: func() time.Time { return m.readyAfter(at) }})
}

func (s *faultRun) pick(role string) *member {
	ms := s.c.running(role)
	if len(ms) == 0 {
		s.t.Fatalf("no %s is running to kill", role)
	}
	if role != "worker" {
		return ms[0]
	}
	procs := scanProcs(s.runID)
	best := ms[0]
	for _, m := range ms[1:] {
		if len(actionsOf(procs, m.incarnation())) > len(actionsOf(procs, best.incarnation())) {
			best = m
		}
	}
	return best
}

// service runs a fault on a service; it is back when fault returns, which says how it went.
func (s *faultRun) service(what string, fault func() (string, error)) {
	at := time.Now()
	note, err := fault()
	back := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faultEvent{what: what, note: note, at: at, err: err, back: func() time.Time { return back }})
}

// lastFault is when the last fault's service or process was back.
func (s *faultRun) lastFault() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last time.Time
	for _, f := range s.faults {
		if b := f.back(); b.After(last) {
			last = b
		}
	}
	return last
}

// settle waits until every event has its execution and every execution has ended, up to
// giveUpAfter after the last fault, and returns how long after the last fault that was; -1
// when it never was.
func (s *faultRun) settle(pool *pgxpool.Pool, last time.Time) time.Duration {
	deadline := last.Add(giveUpAfter)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var without, unfinished int
		err := pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM attune.event ev WHERE NOT EXISTS (SELECT 1 FROM attune.enforcement en
				JOIN attune.execution x ON x.enforcement = en.id WHERE en.event = ev.id)),
			(SELECT count(*) FROM attune.execution WHERE status NOT IN ('completed', 'failed', 'cancelled', 'timeout', 'abandoned'))`).
			Scan(&without, &unfinished)
		cancel()
		if err == nil && without == 0 && unfinished == 0 {
			return time.Since(last)
		}
		if time.Now().After(deadline) {
			return -1
		}
		<-tick.C // polling the database, which announces nothing
	}
}

// incarnation names the current process as the actions it runs see it.
func (m *member) incarnation() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("%s.%d", m.name, len(m.procs))
}

// readyAfter is when the first incarnation started after t became ready; zero while none is.
func (m *member) readyAfter(t time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var first time.Time
	for _, at := range m.readyAt {
		if at.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}
