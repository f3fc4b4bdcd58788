// Package servicetest runs a server program a test owns (a PostgreSQL server, a RabbitMQ
// node) as a child process that the test may stop, crash and start again.
package servicetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Process is a server program run as a child of the test, in a process group of its own, with
// its output appended to a log file.
type Process struct {
	name    string
	command func() *exec.Cmd
	log     string
	ready   func(ctx context.Context) error
	timeout time.Duration

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// pollInterval is how often Start asks a starting server whether it is ready.
const pollInterval = 50 * time.Millisecond

// New describes a server called name (for messages): command builds the command of one run,
// ready succeeds once the server takes clients, and timeout bounds a start and a stop.
func New(name, logPath string, timeout time.Duration, command func() *exec.Cmd, ready func(ctx context.Context) error) *Process {
	return &Process{name: name, command: command, log: logPath, ready: ready, timeout: timeout}
}

// Log is what the server wrote so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Start starts the server and polls until it is ready.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("start %s: already running", p.name)
	}
	logf, err := os.OpenFile(p.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	defer logf.Close()
	cmd := p.command()
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, so that a ^C to the test does not reach it before cleanup and
	// a kill reaches everything it started; killed with the test if the test is killed.
	cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited

	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := p.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			p.cmd = nil
			return fmt.Errorf("%s exited while starting:\n%s", p.name, p.Log())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s (%v):\n%s", p.name, p.timeout, err, p.Log())
		case <-tick.C:
		}
	}
}

// Stop sends sig to the server and waits until it has exited; stopping a stopped server does
// nothing. One still there after the timeout is killed, and that is an error.
func (p *Process) Stop(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-p.exited:
		p.cmd = nil
		return nil
	case <-time.After(p.timeout):
		p.kill()
		return fmt.Errorf("%s still running %s after %s; killed", p.name, p.timeout, sig)
	}
}

// Kill ends the server's whole process group at once with SIGKILL, as a crash would.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.kill()
	}
}

func (p *Process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// FreePort asks the kernel for a loopback port nobody listens on.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// KeepLogs copies the files named into $ATTUNE_TEST_LOG_DIR/<name>/ when that is set, so that
// a run's logs outlive its temporary directories.
func KeepLogs(name string, files ...string) error {
	keep := os.Getenv("ATTUNE_TEST_LOG_DIR")
	if keep == "" {
		return nil
	}
	dst := filepath.Join(keep, name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("keep logs: %w", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a log the server never wrote
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
			return fmt.Errorf("keep logs: %w", err)
		}
	}
	return nil
}
