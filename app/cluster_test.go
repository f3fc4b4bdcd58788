package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/attune-go/attune/internal/servicetest"
)

// cluster runs attune's roles as separate processes against one database and one broker,
// any number of each role, every one on an address and (for workers) a name of its own that
// it keeps across restarts, so that a test can kill, stop and restart any of them as a
// service manager would, and talk to the API as the first admin.
type cluster struct {
	t    *testing.T
	args []string
	env  []string
	// sharedBroker is the namespace on the shared test broker, whose worker queues the
	// cluster deletes at the end; empty on a broker of the test's own.
	sharedBroker string
	// logDir, when set (ATTUNE_TEST_LOG_DIR), keeps every process's output in a file.
	logDir string
	prefix string
	// incarnationEnv, when set, names a variable each process gets as <member>.<incarnation>:
	// what an action inherits from its worker says which worker process ran it.
	incarnationEnv string
	client         *http.Client

	// ctx ends when the cluster stops, and with it every restart under way.
	ctx     context.Context
	cancel  context.CancelFunc
	pending sync.WaitGroup
	stopped sync.Once

	mu      sync.Mutex
	members []*member
	token   string
	unasked []unaskedExit
	// loginMu makes callers that need a token at once wait for one login.
	loginMu sync.Mutex
}

// member is one role's process across its incarnations.
type member struct {
	c      *cluster
	role   string
	name   string // role-n, for the test's messages
	addr   string
	worker string

	mu    sync.Mutex
	procs []*process // every incarnation, the current one last
	// asked holds the incarnations the test signalled: any other exit is the process's own.
	asked map[*process]time.Time
	// ready is set once the current incarnation logged that it is ready, until it is
	// signalled or exits.
	ready bool
	// restarting is set while keepUp brings the member back.
	restarting bool
	// readyAt is when each incarnation that became ready did.
	readyAt []time.Time
}

// unaskedExit is a process that exited without the test asking.
type unaskedExit struct {
	member      string
	incarnation int
	code        int
	at          time.Time
	tail        string
}

const (
	// clusterReadyTimeout bounds a process's start: migrations, the broker's topology, the
	// packs.
	clusterReadyTimeout = 60 * time.Second
	// restartBackoff is how long a service manager waits before starting a process again.
	restartBackoff = time.Second
)

// newCluster prepares a cluster whose processes all get args (database, broker, packs...) and
// env; sharedBroker names the namespace when the broker is the shared test broker. Every
// process still running is stopped when the test ends.
func newCluster(t *testing.T, sharedBroker string, env []string, args ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, args: args, env: env, sharedBroker: sharedBroker, logDir: os.Getenv("ATTUNE_TEST_LOG_DIR"),
		prefix: "c" + uuid.NewString()[:6], client: &http.Client{Timeout: 30 * time.Second}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	t.Cleanup(c.stopAll)
	return c
}

// start starts one more process of each role given, all at once, and waits until they are
// ready.
func (c *cluster) start(roles ...string) []*member {
	c.t.Helper()
	ms := make([]*member, len(roles))
	c.mu.Lock()
	for i, role := range roles {
		n := 1
		for _, m := range c.members {
			if m.role == role {
				n++
			}
		}
		ms[i] = &member{c: c, role: role, name: fmt.Sprintf("%s-%d", role, n), asked: map[*process]time.Time{}}
		ms[i].worker = c.prefix + "-" + ms[i].name
		c.members = append(c.members, ms[i])
	}
	c.mu.Unlock()
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		port, err := servicetest.FreePort()
		if err != nil {
			c.t.Fatalf("port for %s: %v", m.name, err)
		}
		m.addr = fmt.Sprintf("127.0.0.1:%d", port)
		wg.Go(func() { errs[i] = m.launch() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.t.Fatalf("%v", err)
		}
	}
	return ms
}

// running lists the members of role whose current process is ready.
func (c *cluster) running(role string) []*member {
	var out []*member
	for _, m := range c.all() {
		if m.role == role && m.isReady() {
			out = append(out, m)
		}
	}
	return out
}

// all lists every member.
func (c *cluster) all() []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*member(nil), c.members...)
}

// supervise restarts, as a service manager would, every process that exits without the test
// asking, until the cluster stops; unaskedExits lists them.
func (c *cluster) supervise() {
	c.pending.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		seen := map[*process]bool{}
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-tick.C:
			}
			for _, m := range c.all() {
				p := m.current()
				if p == nil || seen[p] || !p.hasExited() {
					continue
				}
				m.mu.Lock()
				_, asked := m.asked[p]
				restarting := m.restarting
				n := len(m.procs)
				m.mu.Unlock()
				if asked || restarting {
					continue
				}
				seen[p] = true
				c.mu.Lock()
				c.unasked = append(c.unasked, unaskedExit{member: m.name, incarnation: n, code: p.exitCode(), at: time.Now(), tail: tail(p.output(), 10)})
				c.mu.Unlock()
				m.keepUp(restartBackoff)
			}
		}
	})
}

// unaskedExits lists the processes that exited without the test asking.
func (c *cluster) unaskedExits() []unaskedExit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]unaskedExit(nil), c.unasked...)
}

// stopAll ends every process: SIGTERM, then SIGKILL for one still there after a while. It
// does so once, whoever calls it first: the test, or its cleanup.
func (c *cluster) stopAll() { c.stopped.Do(c.stop) }

func (c *cluster) stop() {
	c.cancel()
	c.pending.Wait()
	var wg sync.WaitGroup
	for _, m := range c.all() {
		wg.Go(func() {
			if m.alive() {
				if _, err := m.signal(syscall.SIGTERM, 30*time.Second); err != nil {
					c.t.Logf("%v; killing it", err)
				}
			}
			for _, p := range m.incarnations() {
				p.kill()
			}
		})
	}
	wg.Wait()
	if c.sharedBroker != "" {
		for _, m := range c.all() {
			if m.role == "worker" {
				deleteWorkerQueues(c.t, c.sharedBroker, m.worker)
			}
		}
	}
	if c.t.Failed() {
		for _, m := range c.all() {
			c.t.Logf("%s", m.summary())
		}
	}
}

// launch starts a new incarnation and waits until it logs that it is ready. One that is not
// ready in time is killed.
func (m *member) launch() error {
	args := append(append([]string{}, m.c.args...), "--roles="+m.role, "--http-addr="+m.addr, "--worker-name="+m.worker)
	m.mu.Lock()
	n := len(m.procs) + 1
	m.mu.Unlock()
	env := m.c.env
	if m.c.incarnationEnv != "" {
		env = append(append([]string{}, env...), fmt.Sprintf("%s=%s.%d", m.c.incarnationEnv, m.name, n))
	}
	p, err := spawnServe(env, args...)
	if err != nil {
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	m.mu.Lock()
	m.procs = append(m.procs, p)
	m.mu.Unlock()
	if m.c.logDir != "" {
		go p.copyOutput(filepath.Join(m.c.logDir, fmt.Sprintf("%s.%d.log", m.name, n)))
	}
	if _, err := p.awaitLog(m.c.ctx, "attune ready", clusterReadyTimeout); err != nil {
		m.mu.Lock()
		m.asked[p] = time.Now()
		m.mu.Unlock()
		p.kill()
		return fmt.Errorf("%s: %w\n%s", m.name, err, tail(p.output(), 30))
	}
	p.addr = m.addr
	m.mu.Lock()
	m.ready = true
	m.readyAt = append(m.readyAt, time.Now())
	m.mu.Unlock()
	return nil
}

// keepUp starts the member again after a delay, and again a restartBackoff after each
// start that fails, until one succeeds or the cluster stops. It returns at once.
func (m *member) keepUp(after time.Duration) {
	m.mu.Lock()
	m.restarting = true
	m.mu.Unlock()
	m.c.pending.Go(func() {
		defer func() {
			m.mu.Lock()
			m.restarting = false
			m.mu.Unlock()
		}()
		for delay := after; ; delay = restartBackoff {
			select {
			case <-m.c.ctx.Done():
				return
			case <-time.After(delay):
			}
			if err := m.launch(); err == nil {
				return
			}
		}
	})
}

// current is the latest incarnation; nil before the first started.
func (m *member) current() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.procs) == 0 {
		return nil
	}
	return m.procs[len(m.procs)-1]
}

func (m *member) incarnations() []*process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*process(nil), m.procs...)
}

func (m *member) alive() bool {
	p := m.current()
	return p != nil && !p.hasExited()
}

// isReady says whether the current incarnation is ready and neither signalled nor gone.
func (m *member) isReady() bool {
	m.mu.Lock()
	ready := m.ready
	m.mu.Unlock()
	return ready && m.alive()
}

// signal sends sig to the current process and waits up to timeout for it to exit; it
// returns when the signal was sent.
func (m *member) signal(sig syscall.Signal, timeout time.Duration) (time.Time, error) {
	p := m.current()
	at := time.Now()
	m.mu.Lock()
	m.asked[p] = at
	m.ready = false
	m.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		return at, fmt.Errorf("%s to %s: %w", sig, m.name, err)
	}
	select {
	case <-p.exited:
		return at, nil
	case <-time.After(timeout):
		return at, fmt.Errorf("%s did not exit within %s of %s", m.name, timeout, sig)
	}
}

// restart starts the member again, on the same address and under the same worker name.
func (m *member) restart() error {
	if m.alive() {
		return fmt.Errorf("restart %s: still running", m.name)
	}
	return m.launch()
}

// summary says how each incarnation ended and what it logged at error level, for a test
// that failed.
func (m *member) summary() string {
	var b strings.Builder
	for i, p := range m.incarnations() {
		state := "running"
		if p.hasExited() {
			state = fmt.Sprintf("exit code %d", p.exitCode())
		}
		errs := p.records("ERROR")
		fmt.Fprintf(&b, "%s incarnation %d (pid %d): %s, %d error lines\n", m.name, i+1, p.cmd.Process.Pid, state, len(errs))
		for _, rec := range errs[:min(len(errs), 5)] {
			fmt.Fprintf(&b, "    %v: %v\n", rec["msg"], rec["err"])
		}
	}
	return b.String()
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// records lists the log records of a level.
func (p *process) records(level string) []map[string]any {
	return p.recordsWhere(func(rec map[string]any) bool { return rec["level"] == level })
}

// recordsWhere lists the log records keep keeps.
func (p *process) recordsWhere(keep func(rec map[string]any) bool) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, rec := range p.logs {
		if keep(rec) {
			out = append(out, rec)
		}
	}
	return out
}

// copyOutput writes the process's output to path once it has exited.
func (p *process) copyOutput(path string) {
	<-p.exited
	_ = os.WriteFile(path, []byte(p.output()), 0o644)
}

// apiToken logs in as the first admin through any api member, once: callers that ask at the
// same time wait for that one login. An api process says it is ready before it has made the
// first admin (it does so as it runs), so a refused login is tried again, up to
// clusterReadyTimeout.
func (c *cluster) apiToken(ctx context.Context) (string, error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	token := c.token
	c.mu.Unlock()
	if token != "" {
		return token, nil
	}
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		last := fmt.Errorf("log in: no api is running")
		refused := false
		for _, m := range c.running("api") {
			status, body, err := c.call(ctx, m, http.MethodPost, "/auth/login", map[string]string{"login": "admin", "password": testAdminPassword})
			if err == nil && status == http.StatusOK {
				token, _ = body["access_token"].(string)
				c.mu.Lock()
				c.token = token
				c.mu.Unlock()
				return token, nil
			}
			refused = refused || status == http.StatusUnauthorized
			last = fmt.Errorf("log in through %s: %d %v %v", m.name, status, body, err)
		}
		if !refused || time.Now().After(deadline) {
			return "", last
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (%w)", last, ctx.Err())
		case <-time.After(100 * time.Millisecond): // polling: the admin's creation is announced to no one
		}
	}
}

// call sends an API request to member m, as the first admin under /api/, and decodes the
// answer's JSON object. It never fails the test, so that goroutines may use it.
func (c *cluster) call(ctx context.Context, m *member, method, path string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+m.addr+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(path, "/api/") {
		token, err := c.apiToken(ctx)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, out, nil
}

// mustCall is call from the test's goroutine, failing the test unless the answer is want.
func (c *cluster) mustCall(m *member, want int, method, path string, body any) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, out, err := c.call(ctx, m, method, path, body)
	if err != nil || status != want {
		c.t.Fatalf("%s %s through %s: want %d, got %d %v (%v)", method, path, m.name, want, status, out, err)
	}
	return out
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
