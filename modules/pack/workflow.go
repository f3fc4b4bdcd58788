package pack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/attune-go/attune/modules/workflow"
)

// entryPoint checks what an action's entry point names: a shell action's script, which a
// worker runs, or a workflow's definition, which is read and checked here so that a broken
// workflow refuses its pack whole, naming the definition's file and field.
func (l *loader) entryPoint(a *Action) error {
	if a.EntryPoint == "" {
		return nil
	}
	isWorkflow := a.RunnerType == RunnerWorkflow
	if err := l.script("actions", a.EntryPoint, !isWorkflow); err != nil {
		return &Error{File: a.File, Field: "entry_point", Err: err}
	}
	if !isWorkflow {
		return nil
	}
	file := definitionFile(*a)
	data, err := fs.ReadFile(l.fsys, path.Join(l.dir, file))
	if err != nil {
		return &Error{File: file, Err: err}
	}
	d, err := workflow.Parse(data)
	var we *workflow.Error
	if errors.As(err, &we) {
		return &Error{File: file, Field: we.Field, Err: we.Err}
	}
	if err != nil {
		return &Error{File: file, Err: err}
	}
	var literal any
	if err := yaml.Unmarshal(data, &literal); err != nil {
		return &Error{File: file, Err: err}
	}
	if at, ok := SealedAt(literal); ok {
		return &Error{File: file, Field: strings.TrimPrefix(at, "."), Err: errSealedValue}
	}
	// input documents which parameters the definition reads; one the action does not
	// declare would always read as nil.
	for i, name := range d.Input {
		if _, ok := a.Parameters[name]; !ok {
			return &Error{File: file, Field: fmt.Sprintf("input[%d]", i), Err: fmt.Errorf("%q is not a parameter of action %s", name, a.Ref)}
		}
	}
	a.Workflow = d
	return nil
}

// definitionFile is a workflow action's definition's path relative to the pack directory.
func definitionFile(a Action) string {
	return path.Join("actions", a.EntryPoint)
}

// ownActionExists answers for refs into the pack alone, leaving the others to
// CheckReferences, which knows what is registered.
func (p *Pack) ownActionExists(ref string) bool {
	if !strings.HasPrefix(ref, p.Ref+".") {
		return true
	}
	for _, a := range p.Actions {
		if a.Ref == ref {
			return true
		}
	}
	return false
}

// checkTasks refuses a workflow task whose action does not exist, naming the definition's
// file and the task's action field.
func (p *Pack) checkTasks(actionExists func(ref string) bool) error {
	for _, a := range p.Actions {
		if err := checkWorkflowTasks(a, actionExists); err != nil {
			return err
		}
	}
	return nil
}

func checkWorkflowTasks(a Action, actionExists func(ref string) bool) error {
	if a.Workflow == nil {
		return nil
	}
	for _, t := range a.Workflow.Tasks {
		if !actionExists(t.Action) {
			return &Error{File: definitionFile(a), Field: "tasks." + t.Name + ".action", Err: fmt.Errorf("no action %q", t.Action)}
		}
	}
	return nil
}

// CheckEntryPoint checks what a validated action's entry_point names in the pack in packDir,
// as loading the pack does: a shell action's script (see CheckScript), or a workflow's
// definition, which it reads, checks and keeps in a.Workflow.
func CheckEntryPoint(packDir string, a *Action) error {
	if a.RunnerType != RunnerWorkflow {
		return CheckScript(packDir, a.EntryPoint)
	}
	if packDir == "" {
		return fieldError("entry_point", errors.New("the pack has no directory on this server to hold the workflow's definition"))
	}
	l := &loader{fsys: os.DirFS(packDir), dir: ".", root: packDir}
	return l.entryPoint(a)
}

// CheckWorkflow checks that every task of a workflow action sent on its own runs an action
// that is registered, as Register checks a pack's workflows. Problems come back as *Error
// naming the definition's file and the task's action; a store failure comes back as it is.
func CheckWorkflow(ctx context.Context, r Registrar, a Action) error {
	lookup := &storeLookup{ctx: ctx, r: r}
	err := checkWorkflowTasks(a, lookup.ActionExists)
	if lookup.err != nil {
		return lookup.err
	}
	return err
}

// WorkflowReadsUserKeys reports whether a stored workflow definition (store.Workflow) reads
// kv.user anywhere: its variables then hold values from the keys of whoever requested it,
// which a rerun from a task carries over.
func WorkflowReadsUserKeys(definition json.RawMessage) (bool, error) {
	var d workflow.Definition
	if err := json.Unmarshal(definition, &d); err != nil {
		return false, fmt.Errorf("decode the workflow definition: %w", err)
	}
	refs, err := d.KeyRefs()
	if err != nil {
		return false, err
	}
	return readsUser(refs), nil
}
