// Package pack reads Attune packs: the pack.yaml, actions, triggers, sensors and rules of a
// pack directory, validated so that a broken pack is refused whole with an error naming the
// file and the field.
//
// A pack directory holds pack.yaml and, optionally, the subdirectories actions/, triggers/,
// sensors/, rules/ and policies/, each with one YAML file (.yaml or .yml) per component.
// Other files there, such as the scripts actions run, and subdirectories are not read as
// components. Every component has a ref "<pack>.<name>"; a file may give the short form
// "name: <name>" instead. Unknown keys are errors, so a misspelt key is never silently
// ignored.
//
// Loading checks each file on its own and refs within the pack. References to actions and
// triggers, which may live in other packs (rules commonly use core's timers), are checked
// separately by CheckReferences against what is registered.
package pack

import (
	"fmt"
)

// Pack is a loaded, validated pack. Components are in file name order.
type Pack struct {
	Ref         string `json:"ref" yaml:"ref"`
	Label       string `json:"label" yaml:"label"`
	Description string `json:"description" yaml:"description"`
	Version     string `json:"version" yaml:"version"`
	// Dir is the absolute directory the pack was loaded from by Load; empty for packs loaded
	// from an fs.FS, such as the embedded core pack.
	Dir string `json:"dir,omitempty" yaml:"-"`
	// Content is the pack's files as a version, set by Detach or by Register from Dir.
	Content  *Content  `json:"-" yaml:"-"`
	Actions  []Action  `json:"actions" yaml:"-"`
	Triggers []Trigger `json:"triggers" yaml:"-"`
	Sensors  []Sensor  `json:"sensors" yaml:"-"`
	Rules    []Rule    `json:"rules" yaml:"-"`
	Policies []Policy  `json:"policies" yaml:"-"`
}

// Lookup answers whether a component exists outside the pack being checked, typically in
// the database or in the core pack.
type Lookup interface {
	ActionExists(ref string) bool
	TriggerExists(ref string) bool
}

// CheckReferences verifies that every rule names an action and a trigger, every sensor names
// triggers, and every policy with an action_ref and every workflow's task names an action,
// that exist in the pack or through lookup. lookup may be nil to check the pack on its own. The error names the file and
// field of the first dangling reference, such as
// `rules/r.yaml: action_ref: no action "demo.missing"`.
func (p *Pack) CheckReferences(lookup Lookup) error {
	actions := make(map[string]bool, len(p.Actions))
	for _, a := range p.Actions {
		actions[a.Ref] = true
	}
	triggers := make(map[string]bool, len(p.Triggers))
	for _, t := range p.Triggers {
		triggers[t.Ref] = true
	}
	actionExists := func(ref string) bool { return actions[ref] || lookup != nil && lookup.ActionExists(ref) }
	triggerExists := func(ref string) bool { return triggers[ref] || lookup != nil && lookup.TriggerExists(ref) }

	err := func() error {
		for _, s := range p.Sensors {
			for i, ref := range s.TriggerRefs {
				if !triggerExists(ref) {
					return &Error{File: s.File, Field: fmt.Sprintf("trigger_refs[%d]", i), Err: fmt.Errorf("no trigger %q", ref)}
				}
			}
		}
		for _, r := range p.Rules {
			if !triggerExists(r.TriggerRef) {
				return &Error{File: r.File, Field: "trigger_ref", Err: fmt.Errorf("no trigger %q", r.TriggerRef)}
			}
			if !actionExists(r.ActionRef) {
				return &Error{File: r.File, Field: "action_ref", Err: fmt.Errorf("no action %q", r.ActionRef)}
			}
		}
		for _, pol := range p.Policies {
			if pol.ActionRef != "" && !actionExists(pol.ActionRef) {
				return &Error{File: pol.File, Field: "action_ref", Err: fmt.Errorf("no action %q", pol.ActionRef)}
			}
		}
		return p.checkTasks(actionExists)
	}()
	if err != nil {
		return fmt.Errorf("check references of pack %s: %w", p.Ref, err)
	}
	return nil
}
