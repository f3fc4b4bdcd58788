package workflow

import (
	"math"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	// taskNamePattern is the pattern of action names: tasks are named like the actions they
	// run.
	taskNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	// identifierPattern keeps variable names usable as vars.<name> in expressions.
	identifierPattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	// refPattern is an action ref, <pack>.<name>, with the pack package's patterns.
	refPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]*\.[a-z0-9][a-z0-9_-]*$`)
)

// maxSeconds bounds every wait a definition writes, so that a typo of a few zeros does not
// park a task for years, and so that no wait overflows a time.Duration.
const maxSeconds = 30 * 24 * 60 * 60

// maxRetries bounds retry.count.
const maxRetries = 100

// parser reads one definition; joinAll remembers the tasks written join: all, whose count
// the graph decides once every task is read.
type parser struct {
	d       *Definition
	joinAll map[string]bool
}

// parse reads the definition's structure and checks each template in the scope it runs in;
// the graph is checkGraph's.
func parse(data []byte) (*Definition, map[string]bool, error) {
	root, err := document(data)
	if err != nil {
		return nil, nil, err
	}
	p := &parser{d: &Definition{}, joinAll: map[string]bool{}}
	es, err := entries("", root, "", "input", "vars", "tasks", "output")
	if err != nil {
		return nil, nil, err
	}
	sawTasks := false
	for _, e := range es {
		switch e.key {
		case "input":
			err = p.input(e.value, e.path)
		case "vars":
			err = p.vars(e.value, e.path)
		case "tasks":
			sawTasks = true
			err = p.tasks(e.value, e.path)
		case "output":
			if p.d.Output, err = dataMap("", e.value, e.path); err == nil {
				err = checkTemplates(running, "", p.d.Output, e.path)
			}
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if !sawTasks {
		return nil, nil, fieldErrorf("", "tasks", "required")
	}
	// kv is read by written names only, found now so that a run looks up just those.
	if _, err := p.d.KeyRefs(); err != nil {
		return nil, nil, located("", "", err)
	}
	return p.d, p.joinAll, nil
}

func (p *parser) input(n *yaml.Node, path string) error {
	if isNull(n) {
		return nil
	}
	if resolve(n).Kind != yaml.SequenceNode {
		return fieldErrorf("", path, "want a list of parameter names, got %s", describe(n))
	}
	names, err := stringList("", n, path)
	if err != nil {
		return err
	}
	for i, name := range names {
		if name == "" {
			return fieldErrorf("", indexed(path, i), "empty name")
		}
		for j := range i {
			if names[j] == name {
				return fieldErrorf("", indexed(path, i), "%q is listed twice", name)
			}
		}
	}
	p.d.Input = names
	return nil
}

func (p *parser) vars(n *yaml.Node, path string) error {
	vars, err := dataMap("", n, path)
	if err != nil {
		return err
	}
	for name := range vars {
		if !identifierPattern.MatchString(name) {
			return fieldErrorf("", join(path, name), "%q is not a variable name; want letters, digits and _, not starting with a digit", name)
		}
	}
	p.d.Vars = vars
	return checkTemplates(atStart, "", vars, path)
}

func (p *parser) tasks(n *yaml.Node, path string) error {
	es, err := entries("", n, path)
	if err != nil {
		return err
	}
	if len(es) == 0 {
		return fieldErrorf("", path, "want at least one task")
	}
	for _, e := range es {
		switch {
		case e.key == CommandFail || e.key == CommandNoop:
			return fieldErrorf(e.key, e.path, "%q is an engine command, not a task name", e.key)
		case !taskNamePattern.MatchString(e.key):
			return fieldErrorf(e.key, e.path, "task name %q is not valid; want lower case letters, digits, _ and -, starting with a letter or digit", e.key)
		}
		t, err := p.task(e.key, e.value, e.path)
		if err != nil {
			return err
		}
		p.d.Tasks = append(p.d.Tasks, t)
	}
	return nil
}

func (p *parser) task(name string, n *yaml.Node, path string) (*Task, error) {
	es, err := entries(name, n, path, "action", "input", "next", "join", "with", "retry", "timeout_seconds", "delay_seconds")
	if err != nil {
		return nil, err
	}
	t := &Task{Name: name}
	for _, e := range es {
		switch e.key {
		case "action":
			if t.Action, err = stringValue(name, e.value, e.path); err == nil && !refPattern.MatchString(t.Action) {
				err = fieldErrorf(name, e.path, "%q is not an action ref; want <pack>.<name>", t.Action)
			}
		case "input":
			t.Input, err = dataMap(name, e.value, e.path)
		case "next":
			t.Next, err = transitions(name, e.value, e.path)
		case "join":
			err = p.join(t, e.value, e.path)
		case "with":
			t.With, err = with(name, e.value, e.path)
		case "retry":
			t.Retry, err = retry(name, e.value, e.path)
		case "timeout_seconds":
			t.TimeoutSeconds, err = intValue(name, e.value, e.path, 0, maxSeconds)
		case "delay_seconds":
			t.DelaySeconds, err = intValue(name, e.value, e.path, 0, maxSeconds)
		}
		if err != nil {
			return nil, err
		}
	}
	if t.Action == "" {
		return nil, fieldErrorf(name, join(path, "action"), "required")
	}
	return t, checkTaskTemplates(t, path)
}

func (p *parser) join(t *Task, n *yaml.Node, path string) error {
	if s := resolve(n); s.Kind == yaml.ScalarNode && s.Tag == "!!str" {
		if s.Value != "all" {
			return fieldErrorf(t.Name, path, "want all or a number of tasks, got %q", s.Value)
		}
		p.joinAll[t.Name] = true
		return nil
	}
	var err error
	t.Join, err = intValue(t.Name, n, path, 1, math.MaxInt32)
	return err
}

func transitions(task string, n *yaml.Node, path string) ([]Transition, error) {
	if isNull(n) {
		return nil, nil
	}
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		return nil, fieldErrorf(task, path, "want a list of transitions {when, publish, do}, got %s", describe(n))
	}
	out := make([]Transition, len(n.Content))
	for i, tn := range n.Content {
		es, err := entries(task, tn, indexed(path, i), "when", "publish", "do")
		if err != nil {
			return nil, err
		}
		tr := &out[i]
		for _, e := range es {
			switch e.key {
			case "when":
				if tr.When, err = stringValue(task, e.value, e.path); err == nil && strings.TrimSpace(tr.When) == "" {
					err = fieldErrorf(task, e.path, "empty; leave when out to take the transition always")
				}
			case "publish":
				tr.Publish, err = publishes(task, e.value, e.path)
			case "do":
				tr.Do, err = stringList(task, e.value, e.path)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// publishes reads a mapping of variable to value in the order written: a later publish of a
// name wins, and may read what an earlier one set.
func publishes(task string, n *yaml.Node, path string) ([]Publish, error) {
	es, err := entries(task, n, path)
	if err != nil {
		return nil, err
	}
	out := make([]Publish, len(es))
	for i, e := range es {
		if !identifierPattern.MatchString(e.key) {
			return nil, fieldErrorf(task, e.path, "%q is not a variable name; want letters, digits and _, not starting with a digit", e.key)
		}
		v, err := value(task, e.value, e.path)
		if err != nil {
			return nil, err
		}
		out[i] = Publish{Name: e.key, Value: v}
	}
	return out, nil
}

// with reads {items, concurrency}, or the items alone as a shorthand.
func with(task string, n *yaml.Node, path string) (*With, error) {
	if resolve(n).Kind != yaml.MappingNode {
		items, err := items(task, n, join(path, "items"))
		if err != nil {
			return nil, err
		}
		return &With{Items: items}, nil
	}
	es, err := entries(task, n, path, "items", "concurrency")
	if err != nil {
		return nil, err
	}
	w := &With{}
	for _, e := range es {
		switch e.key {
		case "items":
			w.Items, err = items(task, e.value, e.path)
		case "concurrency":
			w.Concurrency, err = intValue(task, e.value, e.path, 0, math.MaxInt32)
		}
		if err != nil {
			return nil, err
		}
	}
	if w.Items == nil {
		return nil, fieldErrorf(task, join(path, "items"), "required")
	}
	return w, nil
}

// items reads a literal list, or a string that is one template (which must give a list when
// it runs: text around it would make a string).
func items(task string, n *yaml.Node, path string) (any, error) {
	switch r := resolve(n); {
	case r.Kind == yaml.SequenceNode:
		return value(task, n, path)
	case r.Kind == yaml.ScalarNode && r.Tag == "!!str" && isWholeTemplate(r.Value):
		return r.Value, nil
	}
	return nil, fieldErrorf(task, path, "want a list, or one {{ }} template giving a list; got %s", describe(n))
}

func retry(task string, n *yaml.Node, path string) (*Retry, error) {
	es, err := entries(task, n, path, "count", "delay_seconds", "backoff", "max_delay_seconds", "when")
	if err != nil {
		return nil, err
	}
	r := &Retry{Backoff: BackoffConstant}
	sawCount := false
	for _, e := range es {
		switch e.key {
		case "count":
			sawCount = true
			r.Count, err = intValue(task, e.value, e.path, 0, maxRetries)
		case "delay_seconds":
			r.DelaySeconds, err = secondsValue(task, e.value, e.path, maxSeconds)
		case "max_delay_seconds":
			r.MaxDelaySeconds, err = secondsValue(task, e.value, e.path, maxSeconds)
		case "backoff":
			if r.Backoff, err = stringValue(task, e.value, e.path); err == nil && r.Backoff != BackoffConstant && r.Backoff != BackoffExponential {
				err = fieldErrorf(task, e.path, "unknown backoff %q; want %s or %s", r.Backoff, BackoffConstant, BackoffExponential)
			}
		case "when":
			r.When, err = stringValue(task, e.value, e.path)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case !sawCount:
		return nil, fieldErrorf(task, join(path, "count"), "required")
	case r.MaxDelaySeconds > 0 && r.MaxDelaySeconds < r.DelaySeconds:
		return nil, fieldErrorf(task, join(path, "max_delay_seconds"), "%s is less than delay_seconds %s", formatSeconds(r.MaxDelaySeconds), formatSeconds(r.DelaySeconds))
	}
	return r, nil
}
