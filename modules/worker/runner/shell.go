package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

const (
	// pipeDrainDelay bounds how long Wait keeps reading output after the action's process has
	// exited: a background child that inherited stdout would otherwise hold the pipe, and the
	// execution, open for as long as it lives.
	pipeDrainDelay = time.Second
	// groupPollInterval is how often a terminating process group is checked for survivors, so
	// that a group which obeys SIGTERM does not sit out the whole grace period.
	groupPollInterval = 20 * time.Millisecond
)

// shellRunner runs a script or an inline command as a process in its own process group, so
// that a timeout or a cancellation can stop everything the action started.
type shellRunner struct {
	cfg Config
}

// stopReason says why the runner stopped a process; zero while it runs to its own end.
type stopReason int

const (
	notStopped stopReason = iota
	stoppedTimeout
	stoppedCancel
)

// Run implements Runner.
func (r *shellRunner) Run(ctx context.Context, job Job) Result {
	if ctx.Err() != nil {
		return cancelledBeforeStart()
	}
	if job.Timeout <= 0 {
		return failed(fmt.Sprintf("job timeout must be positive, got %s", job.Timeout))
	}
	cmd, err := command(job)
	if err != nil {
		return failed(err.Error())
	}
	stdin, err := json.Marshal(parametersOrEmpty(job.Parameters))
	if err != nil {
		return failed(fmt.Sprintf("encode parameters: %v", err))
	}
	files := &paramFiles{parent: r.cfg.FilesDir, executionID: job.ExecutionID}
	defer files.remove()
	env, err := environment(job, r.cfg.Env, files.write)
	if err != nil {
		return failed(err.Error())
	}
	stdout, stderr := newHeadTailBuffer(r.cfg.OutputLimit), newHeadTailBuffer(r.cfg.OutputLimit)
	cmd.Dir = job.WorkDir
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = tee(stdout, job.Stdout), tee(stderr, job.Stderr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = pipeDrainDelay

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return failed(startError(job, err))
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	reason, waitErr := r.wait(ctx, job.Timeout, cmd.Process.Pid, done)
	res := Result{
		DurationMS:      time.Since(start).Milliseconds(),
		StdoutTruncated: stdout.truncated(),
		StderrTruncated: stderr.truncated(),
		TimedOut:        reason == stoppedTimeout,
		Cancelled:       reason == stoppedCancel,
	}
	res.Stdout, res.StdoutCut = stdout.output()
	res.Stderr, res.StderrCut = stderr.output()
	res.ExitCode, res.Error = exitStatus(cmd.ProcessState, waitErr)
	switch reason {
	case stoppedTimeout:
		res.Error = fmt.Sprintf("timed out after %s", job.Timeout)
	case stoppedCancel:
		res.Error = "cancelled"
	}
	res.Succeeded = res.Error == ""
	if job.OutputFormat == FormatJSON {
		parseStdout(&res, r.cfg.OutputLimit)
	}
	return res
}

// wait lets the process run until it exits, the job times out, or ctx is cancelled; in the
// last two cases it stops the process group first. It returns Wait's error.
func (r *shellRunner) wait(ctx context.Context, timeout time.Duration, pgid int, done <-chan error) (stopReason, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var reason stopReason
	select {
	case err := <-done:
		return notStopped, err
	case <-timer.C:
		reason = stoppedTimeout
	case <-ctx.Done():
		reason = stoppedCancel
	}
	// An exit that raced the stop is the process's own result, not the runner's doing.
	select {
	case err := <-done:
		return notStopped, err
	default:
	}
	r.stopGroup(pgid)
	return reason, <-done
}

// stopGroup asks the whole process group to terminate and kills whatever is left of it after
// the grace period. Survivors are counted in the group rather than by the leader's exit, since
// a child that ignores SIGTERM outlives a leader that obeys it.
func (r *shellRunner) stopGroup(pgid int) {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return
	}
	grace := time.NewTimer(r.cfg.KillGrace)
	defer grace.Stop()
	poll := time.NewTicker(groupPollInterval)
	defer poll.Stop()
	for {
		select {
		case <-grace.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-poll.C:
			// Once the group is empty its id may be reused, so no signal may follow.
			if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
				return
			}
		}
	}
}

// tee is kept, and also, when it is set, live: what the worker shows as the action prints.
func tee(kept, live io.Writer) io.Writer {
	if live == nil {
		return kept
	}
	return io.MultiWriter(kept, live)
}

// command builds the process for job without starting it.
func command(job Job) (*exec.Cmd, error) {
	if job.Script == "" {
		if job.Command == "" {
			return nil, errors.New("no script or command")
		}
		return exec.Command("/bin/sh", "-c", job.Command), nil
	}
	if !filepath.IsAbs(job.Script) {
		return nil, fmt.Errorf("script %s is not an absolute path", job.Script)
	}
	info, err := os.Stat(job.Script)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("script %s does not exist", job.Script)
	case err != nil:
		return nil, fmt.Errorf("script %s: %w", job.Script, err)
	case info.IsDir():
		return nil, fmt.Errorf("script %s is a directory", job.Script)
	case info.Mode().Perm()&0o111 == 0:
		// Packs ship their scripts executable; fixing modes here would hide a broken pack.
		return nil, fmt.Errorf("script %s is not executable", job.Script)
	}
	return exec.Command(job.Script), nil
}

// startError explains a failed start. EACCES covers the cases the mode bits cannot: a script
// executable only by another user, or on a noexec mount.
func startError(job Job, err error) string {
	if job.Script != "" && errors.Is(err, syscall.EACCES) {
		return fmt.Sprintf("script %s is not executable: %v", job.Script, err)
	}
	if job.Script != "" {
		return fmt.Sprintf("start script %s: %v", job.Script, err)
	}
	return fmt.Sprintf("start command: %v", err)
}

// exitStatus turns the process's end into an exit code and an error message, empty when the
// process exited 0.
func exitStatus(state *os.ProcessState, waitErr error) (int, string) {
	if state == nil {
		return -1, fmt.Sprintf("wait: %v", waitErr)
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, fmt.Sprintf("killed by signal %d (%s)", ws.Signal(), ws.Signal())
	}
	code := state.ExitCode()
	if code != 0 {
		return code, fmt.Sprintf("exit status %d", code)
	}
	// ErrWaitDelay only says a background child still held the output open when the action
	// exited 0: the action itself succeeded.
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		return code, fmt.Sprintf("wait: %v", waitErr)
	}
	return code, ""
}

// parseStdout fills Data from stdout for output_format json. An action that promised JSON and
// exited 0 without producing it has failed; one that already failed keeps its own error.
func parseStdout(res *Result, limit int) {
	if res.StdoutTruncated {
		if res.Succeeded {
			res.Succeeded = false
			res.Error = fmt.Sprintf("stdout was longer than %d bytes and cut, so it cannot be parsed as JSON", limit)
		}
		return
	}
	data, err := parseJSON(bytes.TrimSpace([]byte(res.Stdout)))
	if err != nil {
		if res.Succeeded {
			res.Succeeded = false
			res.Error = fmt.Sprintf("stdout is not valid JSON: %v", err)
		}
		return
	}
	res.Data = data
}

// parametersOrEmpty makes a job without parameters still send a JSON object, so that an
// action can always decode its stdin the same way.
func parametersOrEmpty(p map[string]any) map[string]any {
	if p == nil {
		return map[string]any{}
	}
	return p
}

// paramFiles holds the parameter values too large for an action's environment, in a directory
// of their own under parent that only this user can read, made at the first value and removed
// once the run is over.
type paramFiles struct {
	parent      string
	executionID int64
	dir         string
}

func (f *paramFiles) write(name, value string) (string, error) {
	if f.dir == "" {
		// The worker makes its directory at start; made again here should something have
		// cleaned the temporary directory since.
		if f.parent != "" {
			if err := os.MkdirAll(f.parent, 0o700); err != nil {
				return "", err
			}
		}
		dir, err := os.MkdirTemp(f.parent, fmt.Sprintf("attune-execution-%d-", f.executionID))
		if err != nil {
			return "", err
		}
		f.dir = dir
	}
	path := filepath.Join(f.dir, name)
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

func (f *paramFiles) remove() {
	if f.dir != "" {
		_ = os.RemoveAll(f.dir)
	}
}
