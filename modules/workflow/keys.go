package workflow

import (
	"slices"

	"github.com/attune-go/attune/modules/ruleeval"
)

// KeyRefs returns the datastore keys the definition's templates and expressions read (vars,
// with.items, inputs, whens, publishes, retry.when, output), each once: the executor looks
// them up in one statement for each pass that renders. A definition that reads none costs
// nothing more.
func (d *Definition) KeyRefs() ([]ruleeval.KeyRef, error) {
	var refs []ruleeval.KeyRef
	add := func(found []ruleeval.KeyRef, err error) error {
		for _, r := range found {
			if !slices.Contains(refs, r) {
				refs = append(refs, r)
			}
		}
		return err
	}
	if err := add(running.KeyRefs(d.Vars, "vars")); err != nil {
		return nil, err
	}
	if err := add(running.KeyRefs(d.Output, "output")); err != nil {
		return nil, err
	}
	for _, t := range d.Tasks {
		path := "tasks." + t.Name
		if err := add(running.KeyRefs(t.Input, path+".input")); err != nil {
			return nil, err
		}
		if t.With != nil {
			if err := add(running.KeyRefs(t.With.Items, path+".with.items")); err != nil {
				return nil, err
			}
		}
		if t.Retry != nil && t.Retry.When != "" {
			if err := add(running.ExpressionKeyRefs(t.Retry.When)); err != nil {
				return nil, err
			}
		}
		for _, tr := range t.Next {
			if tr.When != "" {
				if err := add(running.ExpressionKeyRefs(tr.When)); err != nil {
					return nil, err
				}
			}
			for _, p := range tr.Publish {
				if err := add(running.KeyRefs(p.Value, path+".publish."+p.Name)); err != nil {
					return nil, err
				}
			}
		}
	}
	return refs, nil
}
