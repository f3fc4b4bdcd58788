package workflow

import (
	"errors"
	"strconv"

	"github.com/attune-go/attune/modules/ruleeval"
)

// The languages of a definition's templates: one template and expression language, the
// rules', over the names each place may use, and kv (the datastore's keys) everywhere. A name
// out of its place (item in a task without with, result in output) is refused when the
// definition is parsed.
var (
	// atStart is what vars see: the workflow's input.
	atStart = ruleeval.NewEnv(map[string]any{
		ruleeval.KVName: map[string]any{},
		"input":         map[string]any{},
	})
	// running is what with.items, a task's input and the output see.
	running = ruleeval.NewEnv(map[string]any{
		ruleeval.KVName: map[string]any{},
		"input":         map[string]any{},
		"vars":          map[string]any{},
	})
	// perItem is what the input of a task with items sees.
	perItem = ruleeval.NewEnv(map[string]any{
		ruleeval.KVName: map[string]any{},
		"input":         map[string]any{},
		"vars":          map[string]any{},
		"item":          nil,
		"index":         0,
	})
	// ending is what a transition's when and publish, and retry.when, see.
	ending = ruleeval.NewEnv(map[string]any{
		ruleeval.KVName: map[string]any{},
		"input":         map[string]any{},
		"vars":          map[string]any{},
		"result":        nil,
		"succeeded":     (func() bool)(nil),
		"failed":        (func() bool)(nil),
		"timed_out":     (func() bool)(nil),
		"cancelled":     (func() bool)(nil),
	})
)

// values are what templates over s see. The data is copied, so that nothing a template
// returns aliases s and numbers decoded as json.Number take arithmetic; the status functions
// and result are there only for the templates of a task's ending.
func (s Scope) values(atEnd bool) map[string]any {
	v := map[string]any{
		"input": plainMap(s.Input),
		"vars":  plainMap(s.Vars),
		"item":  ruleeval.Plain(s.Item),
		"index": s.Index,
		// kv holds the keys of the datastore the definition reads (KeyRefs), looked up by the
		// executor; copied as the rest, a secret key as its seal token.
		ruleeval.KVName: ruleeval.Plain(s.KV),
	}
	if atEnd {
		v["result"] = ruleeval.Plain(s.Result)
		for name, outcome := range map[string]string{
			"succeeded": OutcomeSucceeded, "failed": OutcomeFailed, "timed_out": OutcomeTimedOut, "cancelled": OutcomeCancelled,
		} {
			v[name] = func() bool { return s.Outcome == outcome }
		}
	}
	return v
}

// plainMap copies m, keeping a nil map an empty one so that len(input) and the like work.
func plainMap(m map[string]any) map[string]any {
	out, _ := ruleeval.Plain(m).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// render renders v over s in env, a problem becoming an *Error of task.
func render(env *ruleeval.Env, task string, v any, path string, s Scope, atEnd bool) (any, error) {
	out, err := env.Render(v, path, func() map[string]any { return s.values(atEnd) })
	return out, located(task, path, err)
}

// renderMap is render for the mappings of vars, input and output: nil renders to an empty
// map, as a task without input runs its action with no parameters.
func renderMap(env *ruleeval.Env, task string, m map[string]any, path string, s Scope) (map[string]any, error) {
	out, err := render(env, task, m, path, s, false)
	if err != nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

// located turns ruleeval's *PathError into an *Error of task; any other error is put at path.
func located(task, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *ruleeval.PathError
	if errors.As(err, &pe) {
		return &Error{Task: task, Field: pe.Path, Err: pe.Err}
	}
	return &Error{Task: task, Field: path, Err: err}
}

// checkTemplates checks that every template in v compiles in env.
func checkTemplates(env *ruleeval.Env, task string, v any, path string) error {
	return located(task, path, env.Validate(v, path))
}

// checkCondition checks a when: a bare expression or one template, known to be a bool or
// left to its data.
func checkCondition(task, cond, path string) error {
	return located(task, path, ending.CheckBool(cond))
}

// checkTaskTemplates checks every template of t where it will run.
func checkTaskTemplates(t *Task, path string) error {
	input := running
	if t.With != nil {
		if err := checkTemplates(running, t.Name, t.With.Items, join(path, "with.items")); err != nil {
			return err
		}
		input = perItem
	}
	if err := checkTemplates(input, t.Name, t.Input, join(path, "input")); err != nil {
		return err
	}
	for i, tr := range t.Next {
		at := indexed(join(path, "next"), i)
		if tr.When != "" {
			if err := checkCondition(t.Name, tr.When, join(at, "when")); err != nil {
				return err
			}
		}
		for _, p := range tr.Publish {
			if err := checkTemplates(ending, t.Name, p.Value, join(at, "publish."+p.Name)); err != nil {
				return err
			}
		}
	}
	if t.Retry != nil && t.Retry.When != "" {
		return checkCondition(t.Name, t.Retry.When, join(path, "retry.when"))
	}
	return nil
}

// isWholeTemplate reports a string that is one {{ }} template and nothing else, whose value
// keeps its type when rendered.
func isWholeTemplate(s string) bool {
	templated, keepsType := ruleeval.Templated(s)
	return templated && keepsType
}

// taskPath is the dotted path of a task's field.
func taskPath(task, field string) string {
	return "tasks." + task + "." + field
}

// transitionPath is the dotted path of a field of a task's i'th transition.
func transitionPath(task string, i int, field string) string {
	return "tasks." + task + ".next[" + strconv.Itoa(i) + "]." + field
}
