package pack

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/attune-go/attune/modules/ruleeval"
)

// A parameter's default may be a {{ }} template over kv, the datastore's keys, rendered as
// each execution is created, as StackStorm's st2kv defaults are: default: "{{ kv.system.api_url
// }}". kv.pack is the action's pack and kv.user the identity that requested the execution.
// A secret key renders as its seal token, which the worker opens.
var defaults = ruleeval.NewEnv(map[string]any{ruleeval.KVName: map[string]any{}})

// templatedDefault reports a default that is a string holding {{ }}.
func templatedDefault(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	templated, _ := ruleeval.Templated(s)
	return templated
}

// checkDefaultTemplate checks a templated default: it compiles over kv, reads keys by their
// written names, and can give the parameter's type.
func checkDefaultTemplate(p Param) error {
	if err := defaults.Validate(p.Default, "default"); err != nil {
		return err
	}
	if _, err := defaults.KeyRefs(p.Default, "default"); err != nil {
		return err
	}
	if _, err := rendered(p, p.Default); err != nil {
		return err
	}
	return nil
}

// KeyReader reads the keys of refs for one execution (its action's pack, the identity that
// requested it) and returns them as ruleeval.KV builds kv.
type KeyReader func(ctx context.Context, refs []ruleeval.KeyRef) (map[string]any, error)

// RenderDefaults returns values with the {{ }} default of each parameter of s (an action's
// schema, StoredSchema) that values does not give rendered in, reading the keys they use through read, once. values
// is not modified; with no such default it is returned as it is, and read is not called. A
// default that renders to nil (a key that does not exist) leaves the parameter not given.
func (s Schema) RenderDefaults(ctx context.Context, values map[string]any, read KeyReader) (map[string]any, error) {
	templates := map[string]any{}
	for name, p := range s {
		if values[name] == nil && templatedDefault(p.Default) {
			templates[name] = p.Default
		}
	}
	if len(templates) == 0 {
		return values, nil
	}
	refs, err := defaults.KeyRefs(templates, "parameters")
	if err != nil {
		return nil, err
	}
	var kv map[string]any
	if len(refs) > 0 {
		if kv, err = read(ctx, refs); err != nil {
			return nil, err
		}
	}
	out, err := defaults.Render(templates, "parameters", func() map[string]any { return map[string]any{ruleeval.KVName: kv} })
	if err != nil {
		return nil, fmt.Errorf("render defaults: %w", err)
	}
	merged := maps.Clone(values)
	if merged == nil {
		merged = map[string]any{}
	}
	for name, v := range out.(map[string]any) {
		if v != nil {
			merged[name] = v
		}
	}
	return merged, nil
}

// UserDefaults returns the names of the parameters of s whose {{ }} default reads kv.user,
// sorted: their values come from the keys of whoever requested the execution, so a rerun by
// someone else renders them again from the rerunner's keys.
func (s Schema) UserDefaults() []string {
	var names []string
	for name, p := range s {
		if !templatedDefault(p.Default) {
			continue
		}
		// A default that does not compile was refused at registration; none reads kv.user.
		refs, _ := defaults.KeyRefs(p.Default, "default")
		if readsUser(refs) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func readsUser(refs []ruleeval.KeyRef) bool {
	return slices.ContainsFunc(refs, func(r ruleeval.KeyRef) bool { return r.Scope == ruleeval.ScopeUser })
}
