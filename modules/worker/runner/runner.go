// Package runner runs one action the way a worker does: a shell script or command in its own
// process group, an HTTP request, or nothing, and reports the result.
package runner

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Runner types, as stored in an action's runner_type.
const (
	TypeShell = "shell"
	TypeHTTP  = "http"
	TypeNoop  = "noop"
)

// Output formats, as stored in an action's output_format.
const (
	FormatText = "text"
	FormatJSON = "json"
)

const (
	defaultOutputLimit = 1 << 20
	defaultKillGrace   = 5 * time.Second
)

// Job is one execution of one action, fully resolved by the worker.
type Job struct {
	ExecutionID int64
	ActionRef   string
	// RunnerType is "shell", "http" or "noop".
	RunnerType string
	// Script is the absolute path of the script for shell actions with an entry point; empty
	// for an inline command.
	Script string
	// Command is the inline shell command (core.local's cmd), used when Script is empty.
	Command string
	// WorkDir is the pack directory; the process runs here.
	WorkDir string
	// Parameters are already validated, with defaults applied.
	Parameters map[string]any
	// Timeout bounds the whole run and must be positive.
	Timeout time.Duration
	// OutputFormat is "text" or "json".
	OutputFormat string
	// Env are variables of this job alone (ATTUNE_API_URL, ATTUNE_TOKEN), added after the
	// inherited ATTUNE_* variables are dropped.
	Env []string
	// Stdout and Stderr, when set, are also written what a shell action prints, as it prints
	// it: the worker's live output. Their writes must never wait on anything slow, since the
	// action waits on them.
	Stdout, Stderr io.Writer
}

// Result is what the execution's result column holds.
type Result struct {
	Succeeded       bool   `json:"succeeded"`
	ExitCode        int    `json:"exit_code"`
	DurationMS      int64  `json:"duration_ms"`
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`
	// StdoutCut and StderrCut say where a truncated output's marker stands, for the worker's
	// scrubber: a secret may straddle either end of what was cut.
	StdoutCut Cut `json:"-"`
	StderrCut Cut `json:"-"`
	// Data is the parsed stdout for output_format json, and the response for http.
	Data      any    `json:"data,omitempty"`
	Error     string `json:"error,omitempty"`
	TimedOut  bool   `json:"timed_out"`
	Cancelled bool   `json:"cancelled"`
	// NotStarted marks a job that failed before its action ran (a script missing or not
	// executable, parameters that cannot be passed): Error says why, and the worker records
	// it as the execution's reason too.
	NotStarted bool `json:"-"`
}

// Runner runs jobs of one runner type. Run never returns an error: every failure is described
// in the Result. Cancelling ctx means an operator cancelled the execution.
type Runner interface {
	Run(ctx context.Context, job Job) Result
}

// Config tunes the runners.
type Config struct {
	// OutputLimit is the most bytes kept of stdout and of stderr each (and of an HTTP response
	// body); of a longer output the first and last halves are kept with a marker line of what
	// was cut between them (of a response body, the first part), flagged truncated. Default
	// 1 MiB.
	OutputLimit int
	// KillGrace is how long a process group has after SIGTERM before it gets SIGKILL.
	// Default 5s.
	KillGrace time.Duration
	// HTTPClient sends the http runner's requests. Default: a client with no global timeout,
	// since the job timeout applies to each request.
	HTTPClient *http.Client
	// Env is added to the environment of every shell action ("NAME=value"): the worker's
	// marker, which the processes of its actions inherit and it finds them by.
	Env []string
	// FilesDir is where a shell action's parameter values too large for its environment are
	// written, in a subdirectory per run that the run removes: the worker process's own
	// directory, which its companion removes should the worker die mid-run. It is made, mode
	// 0700, when missing. Default: the system's temporary directory.
	FilesDir string
}

func (c Config) withDefaults() Config {
	if c.OutputLimit <= 0 {
		c.OutputLimit = defaultOutputLimit
	}
	if c.KillGrace <= 0 {
		c.KillGrace = defaultKillGrace
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	return c
}

// New returns the runners by type: "shell", "http", "noop".
func New(cfg Config) map[string]Runner {
	cfg = cfg.withDefaults()
	return map[string]Runner{
		TypeShell: &shellRunner{cfg: cfg},
		TypeHTTP:  &httpRunner{cfg: cfg},
		TypeNoop:  noopRunner{},
	}
}

// failed is the result of a job that failed before its action ran, so without a process exit
// status to report. ExitCode is -1 so that it cannot be read as a process that exited 0.
func failed(msg string) Result {
	return Result{ExitCode: -1, Error: msg, NotStarted: true}
}

// cancelledBeforeStart is the result of a job whose execution was cancelled before it ran.
func cancelledBeforeStart() Result {
	return Result{ExitCode: -1, Cancelled: true, Error: "cancelled before start"}
}
