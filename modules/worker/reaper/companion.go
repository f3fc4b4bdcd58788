package reaper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The companion is a small process a worker starts beside itself. Its stdin is a pipe whose
// only write end the worker holds, so the kernel closes it when the worker dies, whatever
// kills it (SIGKILL and the OOM killer included): the companion reads that as the worker's end
// and ends the processes of its actions. Nothing about the worker's death has to run in the
// worker itself, and no list of processes has to be kept: the actions' marker finds even the
// ones forked a moment before.

// reapFor bounds how long a companion keeps trying: a process that SIGKILL has not ended by
// then is stuck in the kernel, where nothing more can be done for it.
const reapFor = 30 * time.Second

// readyLine is what the companion writes on its stdout once signals can no longer end it.
const readyLine = "ready\n"

// Serve is the companion process's work. It ignores SIGINT, SIGTERM and SIGHUP (a signal
// meant for the worker, or for every process of a service, must not end it before it has done
// its work) and SIGPIPE (its log may outlive its reader), then says so on ready. It waits for
// in to end, which it does when the worker dies or closes its end on stopping, then ends the
// processes of m's actions and removes dir, the worker's directory (m.Dir; none when empty),
// and returns.
func Serve(in io.Reader, ready io.Writer, m Marker, dir string, logger *slog.Logger) error {
	if dir != "" {
		if err := m.checkDir(dir); err != nil {
			return fmt.Errorf("worker companion: %w", err)
		}
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	// Never its own worker's process group: a marked process may have joined it, with others.
	// Read now, while the worker is this process's parent: once it died, the parent is
	// whichever process adopted this one.
	spare := []int{}
	if pgid, err := syscall.Getpgid(os.Getppid()); err == nil {
		spare = append(spare, pgid)
	}
	if _, err := io.WriteString(ready, readyLine); err != nil {
		return fmt.Errorf("tell the worker the companion is ready: %w", err)
	}
	// The worker never writes; a read returns at the end of the input, or at an error, which
	// means the same: the pipe is of no more use.
	_, _ = io.Copy(io.Discard, in)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), reapFor)
	defer cancel()
	r, err := Reap(ctx, m.Mine, Options{Spare: spare})
	if err != nil {
		logger.Error("the worker's actions could not all be ended", "worker", m.Worker, "left", r.Left, "err", err)
		err = fmt.Errorf("end the actions of worker %s: %w", m.Worker, err)
	}
	// The files go even when a process is left: secrets do not stay on disk for one stuck in
	// the kernel.
	if dir != "" {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			logger.Error("the worker's files could not be removed", "worker", m.Worker, "dir", dir, "err", rmErr)
			err = errors.Join(err, fmt.Errorf("remove the files of worker %s: %w", m.Worker, rmErr))
		}
	}
	if err != nil {
		return err
	}
	if len(r.PIDs) > 0 {
		logger.Warn("worker gone; its actions ended", "worker", m.Worker, "pids", r.PIDs, "took_ms", time.Since(start).Milliseconds())
	} else {
		logger.Info("worker gone; none of its actions was left", "worker", m.Worker)
	}
	return nil
}

// Companion is a companion process, as the worker that started it sees it.
type Companion struct {
	cmd  *exec.Cmd
	pipe *os.File // the write end of the companion's stdin: this process's alone
	done chan struct{}
	err  error
}

// readyWithin bounds how long a companion may take to start.
const readyWithin = 30 * time.Second

// Launch starts cmd as this process's companion and returns once it is ready (it ignores the
// signals that would end it early). Its stdin is a pipe whose write end only this process
// holds (it is close-on-exec, so no action inherits it); its stdout is the pipe it says it is
// ready on; it runs in a process group of its own (a Ctrl-C to the worker's group does not
// reach it); and its environment keeps no ATTUNE_* variable (the worker's configuration holds
// passwords it has no use for).
func Launch(cmd *exec.Cmd) (*Companion, error) {
	in, pipe, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start worker companion: %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		_, _ = in.Close(), pipe.Close()
		return nil, fmt.Errorf("start worker companion: %w", err)
	}
	defer readyR.Close()
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "ATTUNE_") })
	cmd.Stdin, cmd.Stdout = in, readyW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	_, _ = in.Close(), readyW.Close()
	if err != nil {
		_ = pipe.Close()
		return nil, fmt.Errorf("start worker companion: %w", err)
	}
	c := &Companion{cmd: cmd, pipe: pipe, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	// The read ends with the line, or with EOF when the companion exits first.
	_ = readyR.SetReadDeadline(time.Now().Add(readyWithin))
	line, err := bufio.NewReader(readyR).ReadString('\n')
	if line != readyLine {
		_ = pipe.Close()
		_ = cmd.Process.Kill()
		<-c.done
		return nil, fmt.Errorf("start worker companion %s: it never said it was ready (%v, exit: %v)", cmd.Path, err, c.err)
	}
	return c, nil
}

// PID is the companion's process id.
func (c *Companion) PID() int { return c.cmd.Process.Pid }

// Done is closed when the companion has exited.
func (c *Companion) Done() <-chan struct{} { return c.done }

// Err is how the companion exited, once Done is closed.
func (c *Companion) Err() error { return c.err }

// Stop closes this process's end of the pipe, as its death would, and waits for the companion
// to end what is left of the actions and exit, or for ctx to end.
func (c *Companion) Stop(ctx context.Context) error {
	_ = c.pipe.Close()
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("worker companion: %w", c.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("worker companion did not exit: %w", ctx.Err())
	}
}
