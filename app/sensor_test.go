package app_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/pack"
)

// sensorPackFiles is a pack with two custom sensors: ticker emits a bad line, a line its
// trigger's schema refuses, then a tick every 0.3 s with a counter, its pid and its config;
// crasher emits one event, traces a command with its token and says why on stderr, and exits 3.
var sensorPackFiles = map[string]string{
	"pack.yaml":            "ref: sensortest\nversion: 1.0.0\n",
	"triggers/tick.yaml":   "name: tick\noutput:\n  n: {type: integer, required: true}\n  pid: {type: integer, required: true}\n",
	"triggers/crash.yaml":  "name: crash\n",
	"rules/on_tick.yaml":   "name: on_tick\ntrigger_ref: sensortest.tick\naction_ref: core.noop\n",
	"rules/on_crash.yaml":  "name: on_crash\ntrigger_ref: sensortest.crash\naction_ref: core.noop\n",
	"sensors/ticker.yaml":  "name: ticker\nentry_point: ticker.sh\ntrigger_refs: [sensortest.tick]\nconfig: {greeting: hello}\n",
	"sensors/crasher.yaml": "name: crasher\nentry_point: crasher.sh\ntrigger_refs: [sensortest.crash]\n",
	"sensors/ticker.sh":    tickerScript,
	"sensors/crasher.sh":   "#!/bin/sh\necho '{\"trigger\": \"sensortest.crash\", \"payload\": {}}'\necho \"+ curl -H 'Authorization: Bearer $ATTUNE_TOKEN'\" >&2\necho 'cannot reach the thing' >&2\nexit 3\n",
	"sensors/unused.yaml":  "name: unused\nentry_point: crasher.sh\ntrigger_refs: [sensortest.unused]\n",
	"triggers/unused.yaml": "name: unused\n",
}

const tickerScript = `#!/bin/sh
echo 'not json'
echo '{"trigger": "sensortest.tick", "payload": {"n": "many", "pid": 1}}'
n=0
while :; do
	n=$((n+1))
	echo "{\"trigger\": \"sensortest.tick\", \"payload\": {\"n\": $n, \"pid\": $$, \"config\": $ATTUNE_SENSOR_CONFIG}}"
	sleep 0.3
done
`

// TestCustomSensors runs two sensor replicas beside an api, executor and worker on RabbitMQ:
// a shell sensor's events fire its rule; SIGKILL to the replica running it moves it to the
// other within the lease, and at no moment do two of its processes run (its processes are
// counted throughout, and the pids in its events never interleave); bad lines are skipped
// with the reason and the sensor goes on; a crashing sensor is restarted with growing delays
// and its status says why.
func TestCustomSensors(t *testing.T) {
	t.Parallel()
	packs := t.TempDir()
	for name, text := range sensorPackFiles {
		path := filepath.Join(packs, "sensortest", name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(text), 0o755))
	}
	// A file of its own makes this run's version, and so its cache directories, its own.
	require.NoError(t, os.WriteFile(filepath.Join(packs, "sensortest", "run"), []byte(packs), 0o644))
	version, err := pack.TreeHash(filepath.Join(packs, "sensortest"))
	require.NoError(t, err)
	start := splitRolesWith(t, packs, "--sensor-lease=2s")
	api := start("api,executor,worker")
	replicas := []*process{start("sensor"), start("sensor")}

	// Count the ticker's processes from now on: never more than one at a time. They run from
	// the replicas' caches of the pack's version, not from the directory it was registered from.
	ticker := filepath.Join(version, "sensors", "ticker.sh")
	var most atomic.Int32
	stopCounting := countProcesses(ticker, &most)
	defer stopCounting()

	first := waitSensor(t, api, "sensortest.ticker", func(s map[string]any) bool { return s["status"] == "running" })
	pid1 := int(first["pid"].(float64))
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid1))
	require.NoError(t, err)
	require.Contains(t, string(cmdline), "/sensor-packs/", "the sensor runs from the cache")
	require.Contains(t, string(cmdline), ticker)
	holder := holderOf(t, replicas, first["holder"].(string))
	ticks := waitTicks(t, api, func(ts []tick) bool { return len(ts) >= 3 })
	require.Equal(t, map[string]any{"greeting": "hello"}, ticks[0].config, "the sensor got its config")
	requireEnforced(t, api, "sensortest.on_tick")

	require.NoError(t, holder.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	<-holder.exited
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid1, 0), syscall.ESRCH) }, 5*time.Second, 10*time.Millisecond,
		"the sensor's process outlived its replica")
	gone := time.Now()

	second := waitSensor(t, api, "sensortest.ticker", func(s map[string]any) bool {
		return s["status"] == "running" && s["pid"] != nil && int(s["pid"].(float64)) != pid1
	})
	pid2 := int(second["pid"].(float64))
	startedAt, err := time.Parse(time.RFC3339Nano, second["started_at"].(string))
	require.NoError(t, err)
	t.Logf("sensor handed over %s after the kill", startedAt.Sub(killed).Round(10*time.Millisecond))
	require.Less(t, startedAt.Sub(killed), 10*time.Second, "handed over within the lease and a scan")
	require.True(t, startedAt.After(gone), "the new holder started the sensor before the old one's process was gone")

	ticks = waitTicks(t, api, func(ts []tick) bool { return countPID(ts, pid2) >= 3 })
	// In event order: the first process's ticks, then the second's, each counting up.
	var pids []int
	last := map[int]int{}
	for _, tk := range ticks {
		if len(pids) == 0 || pids[len(pids)-1] != tk.pid {
			require.NotContains(t, pids, tk.pid, "the ticks of two processes interleave: %v", ticks)
			pids = append(pids, tk.pid)
		}
		require.Greater(t, tk.n, last[tk.pid], "pid %d counts up", tk.pid)
		last[tk.pid] = tk.n
	}
	require.Equal(t, []int{pid1, pid2}, pids)
	stopCounting()
	require.EqualValues(t, 1, most.Load(), "two ticker processes ran at once")

	survivor := replicas[0]
	if survivor == holder {
		survivor = replicas[1]
	}
	var reasons []string
	for _, rec := range survivor.recordsWhere(func(r map[string]any) bool {
		return r["msg"] == "sensor line skipped" && r["sensor"] == "sensortest.ticker"
	}) {
		reasons = append(reasons, rec["reason"].(string))
	}
	require.Len(t, reasons, 2, "each bad line is logged")
	require.Contains(t, reasons[0], "not a JSON object")
	require.Contains(t, reasons[1], `payload: field "n"`)

	// The crasher: restarted after 1s, 2s, 4s by the replica that holds it, and its status
	// says how it ended. A hold that ends (a handover, a renewal too slow on a loaded machine
	// stops the program at once) starts the next at 1s again, so the doubling is looked for
	// as a run anywhere in the survivor's restarts.
	var delays []float64
	doubled := func() bool {
		for i := 0; i+3 <= len(delays); i++ {
			if slices.Equal(delays[i:i+3], []float64{1e9, 2e9, 4e9}) {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool {
		delays = nil
		for _, rec := range survivor.recordsWhere(func(r map[string]any) bool {
			return r["msg"] == "sensor ended; starting it again" && r["sensor"] == "sensortest.crasher"
		}) {
			delays = append(delays, rec["retry_in"].(float64))
		}
		return doubled()
	}, 90*time.Second, 50*time.Millisecond, "the delays double: %v", &delays)
	out, stderr, code := api.cli(t, "sensor", "show", "sensortest.crasher")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "exit status 3")
	require.Contains(t, out, "cannot reach the thing")
	require.Contains(t, out, "Bearer ********", "a sensor tracing its commands shows its token masked")
	require.NotContains(t, out+survivor.output(), "ats_", "its token reaches neither the API nor the log")
	out, stderr, code = api.cli(t, "sensor", "list")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `sensortest\.unused\s+stopped`, out, "a sensor no enabled rule uses does not run")
	require.Regexp(t, `sensortest\.ticker\s+running`, out)

	// Disabled, it stops; enabled, it runs again.
	_, stderr, code = api.cli(t, "sensor", "disable", "sensortest.ticker")
	require.Equal(t, 0, code, stderr)
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid2, 0), syscall.ESRCH) }, 10*time.Second, 10*time.Millisecond,
		"a disabled sensor stops")
	_, stderr, code = api.cli(t, "sensor", "enable", "sensortest.ticker")
	require.Equal(t, 0, code, stderr)
	waitSensor(t, api, "sensortest.ticker", func(s map[string]any) bool {
		return s["status"] == "running" && s["pid"] != nil && int(s["pid"].(float64)) != pid2
	})
}

type tick struct {
	id, n, pid int
	config     any
}

func countPID(ts []tick, pid int) int {
	n := 0
	for _, tk := range ts {
		if tk.pid == pid {
			n++
		}
	}
	return n
}

// waitSensor polls GET /sensors/{ref} until ok holds, and returns the sensor.
func waitSensor(t *testing.T, api *process, ref string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var s map[string]any
	require.Eventually(t, func() bool {
		code, body := api.get(t, "/api/v1/sensors/"+ref)
		if code != http.StatusOK {
			return false
		}
		s = data(t, body)
		return ok(s)
	}, 60*time.Second, 20*time.Millisecond, "sensor %s: %v", ref, s)
	return s
}

// waitTicks polls the ticker's events until ok holds of them, oldest first.
func waitTicks(t *testing.T, api *process, ok func([]tick) bool) []tick {
	t.Helper()
	var ticks []tick
	require.Eventually(t, func() bool {
		ticks = nil
		for page := 1; ; page++ {
			_, body := api.get(t, fmt.Sprintf("/api/v1/events?trigger_ref=sensortest.tick&per_page=100&page=%d", page))
			items := body["data"].([]any)
			for _, e := range items {
				ev := e.(map[string]any)
				p := ev["payload"].(map[string]any)
				ticks = append([]tick{{id: int(ev["id"].(float64)), n: int(p["n"].(float64)), pid: int(p["pid"].(float64)), config: p["config"]}}, ticks...)
			}
			if len(items) < 100 {
				break
			}
		}
		return ok(ticks)
	}, 60*time.Second, 50*time.Millisecond)
	return ticks
}

// requireEnforced waits for an enforcement of rule.
func requireEnforced(t *testing.T, api *process, rule string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, body := api.get(t, "/api/v1/enforcements?rule_ref="+rule)
		return len(body["data"].([]any)) > 0
	}, 30*time.Second, 50*time.Millisecond, "rule %s never fired", rule)
}

// holderOf is the replica a lease's holder names (<host>-<pid>-<random>).
func holderOf(t *testing.T, replicas []*process, holder string) *process {
	t.Helper()
	parts := strings.Split(holder, "-")
	pid, err := strconv.Atoi(parts[len(parts)-2])
	require.NoError(t, err, holder)
	for _, r := range replicas {
		if r.cmd.Process.Pid == pid {
			return r
		}
	}
	t.Fatalf("no replica is holder %s", holder)
	return nil
}

// countProcesses reads /proc every 10 ms for processes running script, and keeps in most the
// largest number seen at once, until the function it returns is called.
func countProcesses(script string, most *atomic.Int32) func() {
	done := make(chan struct{})
	var once sync.Once
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			n := int32(0)
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				if _, err := strconv.Atoi(e.Name()); err != nil {
					continue
				}
				cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				if err == nil && bytes.Contains(cmdline, []byte(script)) && !isZombie(e.Name()) {
					n++
				}
			}
			if n > most.Load() {
				most.Store(n)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}

func isZombie(pid string) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z'
}
