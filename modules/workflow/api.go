package workflow

// This file states the contract the executor is written against; the bodies are the helper's
// to write (see /work/notes/wflib.md).

// Error is a problem in a definition: Field is the dotted path of the offending place, such
// as "tasks.check.next[0].when" or "tasks.deploy.with.items"; Task names the task when
// there is one.
type Error struct {
	Task  string
	Field string
	Err   error
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Parse reads a definition from YAML and checks it whole: every key known, every action ref
// well formed, every template compiling in the scope it will run in, every do naming a task
// or an engine command, join only on a task several transitions reach, no cycle without a
// way out, every task reachable from a start. The first problem is an *Error.
func Parse(data []byte) (*Definition, error) {
	panic("unimplemented")
}

// Scope is what templates and expressions of a workflow see.
//
//	input      the workflow's parameters
//	vars       the workflow's variables
//	result     the ended task's result (a list of the items' results, in item order, for a
//	           task with items); in retry.when, the attempt's result
//	item       the current item, in the input of a task with items
//	index      the current item's index, likewise
//	succeeded(), failed(), timed_out(), cancelled()   the ended task's (or attempt's) outcome
type Scope struct {
	Input   map[string]any
	Vars    map[string]any
	Result  any
	Outcome string
	Item    any
	Index   int
}

// Decision is what a task's ending does: Publish is applied to vars in order; Next names the
// tasks to arrive at, in order, each once per transition taken; Fail is set when a taken
// transition says fail, or when the task did not succeed and no transition was taken.
type Decision struct {
	Publish []Publish
	Next    []string
	Fail    bool
}

// Decide evaluates t's transitions against s (s.Outcome and s.Result set).
func Decide(t *Task, s Scope) (Decision, error) {
	panic("unimplemented")
}

// RenderVars renders d.Vars over s.Input.
func RenderVars(d *Definition, s Scope) (map[string]any, error) {
	panic("unimplemented")
}

// RenderItems renders t.With.Items over s and checks that it gives a list.
func RenderItems(t *Task, s Scope) ([]any, error) {
	panic("unimplemented")
}

// RenderInput renders t.Input over s (with s.Item and s.Index set for a task with items).
func RenderInput(t *Task, s Scope) (map[string]any, error) {
	panic("unimplemented")
}

// ShouldRetry reports whether t retries the attempt that ended as s.Outcome with s.Result,
// given that attempt was the attempt'th (from 1).
func ShouldRetry(t *Task, attempt int, s Scope) (bool, error) {
	panic("unimplemented")
}

// RenderOutput renders d.Output over s.Input and s.Vars.
func RenderOutput(d *Definition, s Scope) (map[string]any, error) {
	panic("unimplemented")
}
