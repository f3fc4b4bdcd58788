// Package workflow reads and checks workflow definitions, and decides from a task's ending
// what its workflow does next; the executor keeps the state and carries the decisions out.
package workflow

import (
	"math"
	"time"
)

// Backoffs between a task's attempts.
const (
	BackoffConstant    = "constant"
	BackoffExponential = "exponential"
)

// Engine commands a transition's do may name instead of tasks.
const (
	// CommandFail ends the workflow failed once its running tasks end; nothing new starts.
	CommandFail = "fail"
	// CommandNoop does nothing: the branch ends there.
	CommandNoop = "noop"
)

// Task outcomes, as the status functions of expressions read them.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeTimedOut  = "timed_out"
	OutcomeCancelled = "cancelled"
)

// Definition is a parsed, checked workflow. It is immutable once Parse returns it, and
// encodes to JSON and back (the executor keeps a copy with every workflow it runs, so that a
// pack registered again mid-run does not change a running workflow).
type Definition struct {
	// Input names the parameters the workflow reads, for documentation and checking; the
	// action's parameter schema types them.
	Input []string `json:"input,omitempty"`
	// Vars are the variables' initial values, templates over input rendered at start.
	Vars map[string]any `json:"vars,omitempty"`
	// Tasks in definition order.
	Tasks []*Task `json:"tasks"`
	// Output is rendered over input and vars when the workflow succeeds, and becomes the
	// workflow execution's result.
	Output map[string]any `json:"output,omitempty"`
	// Start lists the tasks that start with the workflow: those no transition names, in
	// definition order.
	Start []string `json:"start"`
}

// Task is one step: an action run once, or once per item.
type Task struct {
	Name string `json:"name"`
	// Action is the ref of the action to run (any runner, a workflow included).
	Action string `json:"action"`
	// Input are the action's parameters, templates rendered when the task (or item) starts.
	Input map[string]any `json:"input,omitempty"`
	// Next are evaluated in order when the task ends; every one whose When holds is taken.
	Next []Transition `json:"next,omitempty"`
	// Join is how many arrivals the task waits for before it starts: 0 for none (each
	// arrival starts it), or a count; join: all is resolved to the number of distinct tasks
	// with a transition to it.
	Join int `json:"join,omitempty"`
	// With runs the task once per item; nil runs it once.
	With *With `json:"with,omitempty"`
	// Retry repeats a failed run (or item); nil for none.
	Retry *Retry `json:"retry,omitempty"`
	// TimeoutSeconds bounds each run of the action (0: the action's own timeout).
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
	// DelaySeconds waits this long between the task's arrival and its start.
	DelaySeconds int `json:"delay_seconds,omitempty"`
}

// Transition is one entry of a task's next.
type Transition struct {
	// When is an expression that must give true for the transition to be taken, written
	// bare ("succeeded()") or as one template ("{{ succeeded() }}"); empty holds always,
	// whatever the outcome.
	When string `json:"when,omitempty"`
	// Publish sets workflow variables, in the order written, from templates that see the
	// task's result and the variables as earlier publishes of the same ending set them.
	Publish []Publish `json:"publish,omitempty"`
	// Do names the tasks to start (several run in parallel), or CommandFail, CommandNoop.
	Do []string `json:"do,omitempty"`
}

// Publish is one variable a transition sets.
type Publish struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// With makes a task run once per item.
type With struct {
	// Items is one template over input and vars that gives a list, or a literal list (whose
	// elements may be templates). A with written as a string is its items alone.
	Items any `json:"items"`
	// Concurrency bounds the items running at once; 0 for no bound.
	Concurrency int `json:"concurrency,omitempty"`
}

// Retry says when a task's run (or item) is tried again.
type Retry struct {
	// Count is how many more attempts may follow the first.
	Count int `json:"count"`
	// DelaySeconds is the wait before the first retry.
	DelaySeconds float64 `json:"delay_seconds,omitempty"`
	// Backoff is BackoffConstant or BackoffExponential (the wait doubles each time).
	Backoff string `json:"backoff,omitempty"`
	// MaxDelaySeconds caps an exponential wait; 0 for no cap but the longest wait a
	// definition may write, 30 days.
	MaxDelaySeconds float64 `json:"max_delay_seconds,omitempty"`
	// When is a template that must hold for a retry (it sees result and the status
	// functions); empty retries every attempt that did not succeed.
	When string `json:"when,omitempty"`
}

// Delay is the wait before attempt (2 for the first retry).
func (r *Retry) Delay(attempt int) time.Duration {
	d := r.DelaySeconds
	if r.Backoff == BackoffExponential && attempt > 2 {
		d *= math.Pow(2, float64(attempt-2))
	}
	if r.MaxDelaySeconds > 0 && d > r.MaxDelaySeconds {
		d = r.MaxDelaySeconds
	}
	// Doubling a 30-day delay 99 times would overflow a Duration.
	d = min(d, maxSeconds)
	return time.Duration(d * float64(time.Second))
}

// Task returns the task named name, or nil.
func (d *Definition) Task(name string) *Task {
	for _, t := range d.Tasks {
		if t.Name == name {
			return t
		}
	}
	return nil
}
