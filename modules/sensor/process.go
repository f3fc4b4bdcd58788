package sensor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

const (
	// pipeDrain bounds how long a sensor's output is still read after its process exited and
	// its group was killed: a child that left the group may hold the pipes open.
	pipeDrain = time.Second
	// groupPoll is how often a stopping process group is checked for survivors.
	groupPoll = 20 * time.Millisecond
)

// ScriptPath is where the program of a sensor of the pack at packPath is: entry points are
// relative to the pack's sensors/ directory. The one place a sensor's program is found.
func ScriptPath(packPath, entryPoint string) string {
	return filepath.Join(packPath, "sensors", entryPoint)
}

// proc is one run of a sensor's program.
type proc struct {
	path  string
	dir   string
	env   []string
	grace time.Duration
	// started is called with the process's pid once it runs; stdout with each line of its
	// output (tooLong for one over maxLine, whose text is dropped); stderr with each line of
	// its errors.
	started func(pid int)
	stdout  func(line []byte, tooLong bool)
	stderr  func(line string)
}

// run starts the program in a process group of its own and blocks until it has exited and its
// output has been read. When ctx ends first it stops the group: SIGTERM, then SIGKILL after
// the grace. It returns how the process ended ("exit status 1", "killed by signal 9 (killed)"),
// or an error when it could not start.
func (p *proc) run(ctx context.Context) (string, error) {
	// The process gets SIGKILL when the thread that started it exits (Pdeathsig): when this
	// replica dies, however, so that its sensor does not run on beside the new holder's. The
	// thread stays locked to this goroutine until the process has been waited for, or Go could
	// retire the thread and the signal would fire early.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	outR, outW, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("make stdout pipe: %w", err)
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return "", fmt.Errorf("make stderr pipe: %w", err)
	}
	defer errR.Close()
	cmd := exec.Command(p.path)
	cmd.Dir, cmd.Env = p.dir, p.env
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		return "", fmt.Errorf("start %s: %w", p.path, err)
	}
	pid := cmd.Process.Pid
	p.started(pid)

	read := make(chan struct{}, 2)
	go func() {
		_ = readLines(outR, p.stdout)
		read <- struct{}{}
	}()
	go func() {
		_ = readLines(errR, func(line []byte, tooLong bool) {
			if !tooLong {
				p.stderr(string(line))
			}
		})
		read <- struct{}{}
	}()
	exited := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			stopGroup(pid, p.grace)
		case <-exited:
		}
	}()
	waitErr := cmd.Wait()
	close(exited)
	<-stopped
	// What the program left running in its group goes with it: a restart starts anew.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	drain := time.NewTimer(pipeDrain)
	defer drain.Stop()
	for range 2 {
		select {
		case <-read:
		case <-drain.C:
			outR.Close()
			errR.Close()
			<-read
		}
	}
	return exitDescription(cmd.ProcessState, waitErr), nil
}

// stopGroup asks the process group to terminate and kills what is left of it after grace.
func stopGroup(pgid int, grace time.Duration) {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		time.Sleep(groupPoll)
		// Once the group is empty its id may be reused, so no signal may follow.
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func exitDescription(state *os.ProcessState, waitErr error) string {
	if state == nil {
		return fmt.Sprintf("wait: %v", waitErr)
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %d (%s)", ws.Signal(), ws.Signal())
	}
	return fmt.Sprintf("exit status %d", state.ExitCode())
}
