package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/attune-go/attune/modules/pack"
)

// ruleDoc is a rule file. modules/pack decodes rules with unexported code, inside a pack;
// this reads a lone rule with the same keys.
type ruleDoc struct {
	Ref           string         `yaml:"ref"`
	Name          string         `yaml:"name"`
	Label         string         `yaml:"label"`
	Description   string         `yaml:"description"`
	TriggerRef    string         `yaml:"trigger_ref"`
	TriggerParams map[string]any `yaml:"trigger_params"`
	Conditions    any            `yaml:"conditions"`
	ActionRef     string         `yaml:"action_ref"`
	ActionParams  map[string]any `yaml:"action_params"`
	Enabled       *bool          `yaml:"enabled"`
}

// ref is what the rule is called: its ref, or its bare name, as there is no pack to prefix.
func (r *ruleDoc) ref() string {
	if r.Ref != "" {
		return r.Ref
	}
	return r.Name
}

// packRule is the rule as modules/pack checks it.
func (r *ruleDoc) packRule() pack.Rule {
	return pack.Rule{Ref: r.Ref, Name: r.Name, TriggerRef: r.TriggerRef, TriggerParams: r.TriggerParams, Conditions: r.Conditions,
		ActionRef: r.ActionRef, ActionParams: r.ActionParams}
}

func readRule(file string) (*ruleDoc, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	var r ruleDoc
	if err := decodeYAML(data, &r, true); err != nil {
		return nil, err
	}
	switch {
	case r.Ref == "" && r.Name == "":
		return nil, errors.New("ref: required (or name)")
	case r.Ref != "" && r.Name != "" && !strings.HasSuffix(r.Ref, "."+r.Name):
		return nil, fmt.Errorf("name: %q does not match ref %q", r.Name, r.Ref)
	case r.TriggerRef == "":
		return nil, errors.New("trigger_ref: required")
	case r.ActionRef == "":
		return nil, errors.New("action_ref: required")
	}
	if r.TriggerParams, err = jsonMap(r.TriggerParams, "trigger_params"); err != nil {
		return nil, err
	}
	if r.ActionParams, err = jsonMap(r.ActionParams, "action_params"); err != nil {
		return nil, err
	}
	if r.Conditions, err = jsonShape(r.Conditions, "conditions"); err != nil {
		return nil, err
	}
	return &r, nil
}

// readPayload reads a payload object from file (see decodeObject).
func readPayload(file string) (map[string]any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	return decodeObject(data, "payload")
}

// decodeObject reads an object as JSON, or failing that as YAML, which reads most JSON too;
// text that looks like JSON gets the JSON parser's complaint, which is the sharper one. path
// names the object in errors about what JSON cannot carry.
func decodeObject(data []byte, path string) (map[string]any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keeps large integers such as ids exact; ruleeval reads json.Number
	jsonErr := dec.Decode(&v)
	if jsonErr == nil && dec.Decode(new(any)) != io.EOF {
		jsonErr = errors.New("more than one JSON value")
	}
	if jsonErr != nil {
		v = nil
		if yamlErr := decodeYAML(data, &v, false); yamlErr != nil {
			if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
				return nil, jsonErr
			}
			return nil, yamlErr
		}
	}
	v, err := jsonShape(v, path)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want an object, got %s", kindName(v))
	}
	return m, nil
}

// unwrapPathError drops the file name from os errors, as the caller names the file already.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// unknownField rewrites yaml.v3's "field x not found in type app.ruleDoc", which names a Go
// type the author never sees.
var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// decodeYAML decodes exactly one YAML document, with strict refusing unknown keys, and keeps
// yaml.v3's line numbers in a one-line error.
func decodeYAML(data []byte, v any, strict bool) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty file")
		}
		return yamlMessage(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return fmt.Errorf("line %d: more than one YAML document", extra.Line)
	case !errors.Is(err, io.EOF):
		return yamlMessage(err)
	}
	return nil
}

func yamlMessage(err error) error {
	var te *yaml.TypeError
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	return errors.New(unknownField.ReplaceAllString(msg, `unknown key "$1"`))
}

// jsonMap is jsonShape for the parameter maps; a missing map is an empty one.
func jsonMap(m map[string]any, path string) (map[string]any, error) {
	if m == nil {
		return map[string]any{}, nil
	}
	v, err := jsonShape(m, path)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// jsonShape copies a decoded YAML or JSON value into the shapes ruleeval and encoding/json
// agree on (map[string]any, []any, int, float64, json.Number, string, bool, nil). yaml.v3
// gives map[any]any for non-string keys and uint64 past int64's range; JSON cannot carry
// those keys, NaN or infinities, so they are errors naming the field.
func jsonShape(v any, path string) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, int, json.Number:
		return x, nil
	case int64:
		return int(x), nil
	case uint64:
		if x <= math.MaxInt64 {
			return int(x), nil
		}
		return float64(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%s: %v cannot be represented in JSON", path, x)
		}
		return x, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := jsonShape(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("%s: keys must be strings, got %v", path, k)
			}
			c, err := jsonShape(e, path+"."+ks)
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := jsonShape(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: a %T cannot be represented in JSON", path, v)
}

// kindName names a value's JSON kind for error messages.
func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}
