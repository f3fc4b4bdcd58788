package workflow

import (
	"errors"
	"fmt"
)

// This file states the contract the executor is written against.

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
// well formed, every template compiling in the scope it will run in (and every when known
// to give a bool, or left to its data), every do naming a task or an engine command, join
// only on a task that several tasks lead to, a start, every task reachable from a start, no
// loop made only of transitions without a when (it could never end). The first problem, in
// that order and in the order written, is an *Error.
//
// The definition's format, keyword by keyword, with the scope each template sees, is in the
// doc comments of Definition and its parts, and of Scope.
func Parse(data []byte) (*Definition, error) {
	d, joinAll, err := parse(data)
	if err != nil {
		return nil, err
	}
	if err := checkGraph(d, joinAll); err != nil {
		return nil, err
	}
	return d, nil
}

// Scope is what templates and expressions of a workflow see. They are the rules' templates
// and expressions (package ruleeval): "{{ expr }}" alone keeps the value's type, text with
// templates in it renders to a string, and a path missing from the data reads as nil. Which
// names a place sees is checked when the definition is parsed:
//
//	input      the workflow's parameters                          everywhere
//	vars       the workflow's variables                           everywhere but vars
//	result     the ended task's result (a list of the items'      when, publish, retry.when
//	           results, in item order, for a task with items);
//	           in retry.when, the attempt's result
//	item       the current item                                   input of a task with items
//	index      the current item's index, from 0                   likewise
//	succeeded(), failed(), timed_out(), cancelled()                when, publish, retry.when
//	           the ended task's (or attempt's) outcome, Outcome
type Scope struct {
	Input   map[string]any
	Vars    map[string]any
	Result  any
	Outcome string
	Item    any
	Index   int
	// KV holds the datastore's keys the definition reads, as ruleeval.KV builds it.
	KV map[string]any
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
//
// Which transitions are taken is decided first, every when against s as the task ended: a
// transition without a when is always taken (on failure too), one with a when is taken when
// it holds, and a when that gives anything but a bool is an error. A when may be written bare
// ("succeeded()") or as one template ("{{ succeeded() }}"). Then the publishes of the taken
// transitions are rendered in order, each seeing vars as the publishes before it in this
// decision set them, and come back rendered, in that order, for the executor to apply.
// Next lists the tasks the taken transitions' do name, in order and with repeats; the
// command noop adds nothing and fail sets Fail. Errors are *Error naming the field.
func Decide(t *Task, s Scope) (Decision, error) {
	values := s.values(true)
	var taken []int
	for i, tr := range t.Next {
		if tr.When != "" {
			holds, err := ending.Bool(tr.When, values)
			if err != nil {
				return Decision{}, &Error{Task: t.Name, Field: transitionPath(t.Name, i, "when"), Err: err}
			}
			if !holds {
				continue
			}
		}
		taken = append(taken, i)
	}
	var d Decision
	vars := values["vars"].(map[string]any) // values' own copy: publishes update it as they go
	for _, i := range taken {
		for _, p := range t.Next[i].Publish {
			v, err := ending.Render(p.Value, transitionPath(t.Name, i, "publish."+p.Name), func() map[string]any { return values })
			if err != nil {
				return Decision{}, located(t.Name, transitionPath(t.Name, i, "publish."+p.Name), err)
			}
			d.Publish = append(d.Publish, Publish{Name: p.Name, Value: v})
			vars[p.Name] = v
		}
		for _, name := range t.Next[i].Do {
			switch name {
			case CommandFail:
				d.Fail = true
			case CommandNoop:
			default:
				d.Next = append(d.Next, name)
			}
		}
	}
	if len(taken) == 0 && s.Outcome != OutcomeSucceeded {
		d.Fail = true
	}
	return d, nil
}

// RenderVars renders d.Vars over s.Input.
func RenderVars(d *Definition, s Scope) (map[string]any, error) {
	return renderMap(atStart, "", d.Vars, "vars", s)
}

// RenderItems renders t.With.Items over s and checks that it gives a list.
func RenderItems(t *Task, s Scope) ([]any, error) {
	path := taskPath(t.Name, "with.items")
	if t.With == nil {
		return nil, &Error{Task: t.Name, Field: path, Err: errors.New("the task has no with")}
	}
	out, err := render(running, t.Name, t.With.Items, path, s, false)
	if err != nil {
		return nil, err
	}
	items, ok := out.([]any)
	if !ok {
		return nil, &Error{Task: t.Name, Field: path, Err: fmt.Errorf("want a list of items, got %s", jsonKind(out))}
	}
	return items, nil
}

// RenderInput renders t.Input over s (with s.Item and s.Index set for a task with items).
func RenderInput(t *Task, s Scope) (map[string]any, error) {
	env := running
	if t.With != nil {
		env = perItem
	}
	return renderMap(env, t.Name, t.Input, taskPath(t.Name, "input"), s)
}

// ShouldRetry reports whether t retries the attempt that ended as s.Outcome with s.Result,
// given that attempt was the attempt'th (from 1): never past retry.count retries (attempt >
// Count); otherwise, when retry.when is set, when it holds (it alone decides, and may retry
// a success); when it is not, when the attempt failed or timed out (a cancelled attempt was
// stopped on purpose). A when that gives anything but a bool is an *Error naming it.
func ShouldRetry(t *Task, attempt int, s Scope) (bool, error) {
	r := t.Retry
	if r == nil || attempt > r.Count {
		return false, nil
	}
	if r.When == "" {
		// A cancelled attempt was stopped on purpose, by a person or its workflow.
		return s.Outcome == OutcomeFailed || s.Outcome == OutcomeTimedOut, nil
	}
	holds, err := ending.Bool(r.When, s.values(true))
	if err != nil {
		return false, &Error{Task: t.Name, Field: taskPath(t.Name, "retry.when"), Err: err}
	}
	return holds, nil
}

// RenderOutput renders d.Output over s.Input and s.Vars.
func RenderOutput(d *Definition, s Scope) (map[string]any, error) {
	return renderMap(running, "", d.Output, "output", s)
}

// jsonKind names a value's JSON type, for "want a list, got ..." messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case map[string]any:
		return "an object"
	case int, int64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
