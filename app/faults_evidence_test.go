package app_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The fault suite's evidence from the actions themselves: the lines faults.mark writes (see
// testdata/faults/faults/actions/mark.sh), and the action processes found in /proc by the
// variables they inherit from their worker.

const (
	// envMarks names the file the actions mark their runs in.
	envMarks = "FAULTS_MARKS"
	// envIncarnation says which worker process ran an action: <member>.<incarnation>.
	envIncarnation = "FAULTS_INCARNATION"
	// envRun marks every process of one scenario, actions included, so that none outlives
	// the test unseen.
	envRun = "FAULTS_RUN"
)

// mark is one line of the marks file.
type mark struct {
	start       bool
	execution   int64
	pid         int
	incarnation string
	uptime      float64
	exit        int // end lines only
}

// readMarks parses the marks file; a line it cannot read is an error, since the actions
// write it whole.
func readMarks(path string) ([]mark, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []mark
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || (f[0] != "start" && f[0] != "end") || (f[0] == "end") != (len(f) == 6) {
			return nil, fmt.Errorf("marks: bad line %q", sc.Text())
		}
		m := mark{start: f[0] == "start", incarnation: f[3]}
		var errs [4]error
		m.execution, errs[0] = strconv.ParseInt(f[1], 10, 64)
		m.pid, errs[1] = strconv.Atoi(f[2])
		m.uptime, errs[2] = strconv.ParseFloat(f[4], 64)
		if !m.start {
			m.exit, errs[3] = strconv.Atoi(f[5])
		}
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("marks: bad line %q: %w", sc.Text(), err)
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// uptime is the time as /proc/uptime says it, the clock the marks use.
func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// actionProc is a live process that inherited a scenario's variables.
type actionProc struct {
	pid         int
	started     uint64 // start time in clock ticks, so that a reused pid is not taken for it
	incarnation string
	execution   string // ATTUNE_EXECUTION_ID: empty for a process that is not an action's
	cmdline     string
}

// scanProcs lists the live processes (zombies are dead) whose environment has envRun=run.
func scanProcs(run string) []actionProc {
	entries, _ := os.ReadDir("/proc")
	want := []byte("\x00" + envRun + "=" + run + "\x00")
	var out []actionProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append(append([]byte{0}, env...), 0), want) {
			continue
		}
		state, started, ok := procStat(pid)
		if !ok || state == 'Z' {
			continue
		}
		p := actionProc{pid: pid, started: started}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			k, v, _ := strings.Cut(string(kv), "=")
			switch k {
			case envIncarnation:
				p.incarnation = v
			case "ATTUNE_EXECUTION_ID":
				p.execution = v
			}
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		out = append(out, p)
	}
	return out
}

// procStat reads a process's state and start time from /proc/<pid>/stat.
func procStat(pid int) (state byte, started uint64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may hold spaces; the fields after it are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, false
	}
	started, err = strconv.ParseUint(f[19], 10, 64)
	return f[0][0], started, err == nil
}

// alive says whether the process is still the one scanned and not a zombie.
func (p actionProc) alive() bool {
	state, started, ok := procStat(p.pid)
	return ok && state != 'Z' && started == p.started
}

// actionsOf lists the action processes of a worker incarnation.
func actionsOf(procs []actionProc, incarnation string) []actionProc {
	var out []actionProc
	for _, p := range procs {
		if p.incarnation == incarnation && p.execution != "" {
			out = append(out, p)
		}
	}
	return out
}

// workerKill is what the suite saw of the actions of a worker it killed.
type workerKill struct {
	incarnation string
	at          time.Time
	atUptime    float64
	// running is how many action processes the worker had when killed.
	running int

	mu sync.Mutex
	// lastSeen is when each action process was last seen alive after the kill.
	lastSeen map[actionProc]time.Time
	done     chan struct{}
}

// watchKill follows the action processes of a worker incarnation about to be killed at
// (atUptime on the marks' clock), until none is left or stop closes; before is what ran just
// before the kill (processes forked since are found by later scans). Call it just before
// sending the signal, so that it looks at the actions from the first moment.
func watchKill(run, incarnation string, before []actionProc, at time.Time, atUptime float64, stop <-chan struct{}) *workerKill {
	k := &workerKill{incarnation: incarnation, at: at, atUptime: atUptime, running: len(before),
		lastSeen: map[actionProc]time.Time{}, done: make(chan struct{})}
	known := map[int]actionProc{}
	for _, p := range before {
		known[p.pid] = p
	}
	go func() {
		defer close(k.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			// The known processes are looked at before the next scan of /proc, which takes
			// a while on a loaded machine; what the scan finds is looked at next time.
			now, left := time.Now(), 0
			for pid, p := range known {
				if !p.alive() {
					delete(known, pid)
					continue
				}
				left++
				k.mu.Lock()
				k.lastSeen[p] = now
				k.mu.Unlock()
			}
			found := actionsOf(scanProcs(run), incarnation)
			for _, p := range found {
				if _, ok := known[p.pid]; !ok && p.alive() {
					known[p.pid] = p
					left++
				}
			}
			if left == 0 {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return k
}

// outlived lists the action processes seen alive more than grace after the kill, with how
// long after it they were last seen.
func (k *workerKill) outlived(grace time.Duration) map[actionProc]time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[actionProc]time.Duration{}
	for p, seen := range k.lastSeen {
		if d := seen.Sub(k.at); d > grace {
			out[p] = d
		}
	}
	return out
}

// killLeftovers gives the processes of the run still alive up to grace to be gone (a
// worker's helpers may still be ending its actions), then ends and lists those left.
func killLeftovers(run string, grace time.Duration) []actionProc {
	deadline := time.Now().Add(grace)
	left := scanProcs(run)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling /proc, which announces nothing
		left = scanProcs(run)
	}
	for _, p := range left {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	return left
}
