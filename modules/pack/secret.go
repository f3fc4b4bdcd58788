package pack

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Mask is what every surface shows in place of the value of a secret parameter: API answers,
// the CLI, messages, logs and recorded results. A caller that sends it back as the value of a
// secret parameter (a form that showed it, submitted unchanged) keeps the value it stands for.
const Mask = "********"

var maskJSON = json.RawMessage(`"` + Mask + `"`)

// MaskParameters returns the JSON object params with the value of each parameter named in
// secrets replaced by Mask; the other values are kept as they are. Something other than an
// object (a rule may render one, which its execution then records as refused) is masked
// whole when there are secrets at all, as nothing says where in it they are.
func MaskParameters(params json.RawMessage, secrets []string) json.RawMessage {
	if len(secrets) == 0 || len(params) == 0 {
		return params
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(params, &values); err != nil {
		return maskJSON
	}
	if values == nil { // JSON null: nothing to hide
		return params
	}
	masked := false
	for _, name := range secrets {
		if _, ok := values[name]; ok {
			values[name], masked = maskJSON, true
		}
	}
	if !masked {
		return params
	}
	out, err := json.Marshal(values)
	if err != nil {
		return maskJSON
	}
	return out
}

// MaskSchema returns a stored parameter schema with the default and the enum values of each
// secret parameter replaced by Mask: a default or an allowed value of a secret is as secret
// as the values given. A schema it cannot read is masked whole.
func MaskSchema(schema json.RawMessage) json.RawMessage {
	if len(schema) == 0 {
		return schema
	}
	var params map[string]map[string]json.RawMessage
	if err := json.Unmarshal(schema, &params); err != nil {
		return maskJSON
	}
	masked := false
	for _, p := range params {
		if string(p["secret"]) != "true" {
			continue
		}
		if d, ok := p["default"]; ok && string(d) != "null" {
			p["default"], masked = maskJSON, true
		}
		var enum []json.RawMessage
		if e, ok := p["enum"]; ok && json.Unmarshal(e, &enum) == nil && len(enum) > 0 {
			for i := range enum {
				enum[i] = maskJSON
			}
			p["enum"], _ = json.Marshal(enum)
			masked = true
		}
	}
	if !masked {
		return schema
	}
	out, err := json.Marshal(params)
	if err != nil {
		return maskJSON
	}
	return out
}

// CheckExecutionParameters validates params against an action's stored parameter schema and
// applies its defaults, returning the parameters to run with (the error names the
// parameter), and the names of its secret parameters, sorted, to record on the execution: an
// execution is masked by them wherever it is shown. They are the ones the schema
// declares secret and the names in alsoSecret (values a rerun copied from an execution that
// had them secret, or an enforcement recorded as secret), which are treated as secret in the
// error as well. The names come back with an error too, so that an execution refused for its
// parameters still masks them.
func CheckExecutionParameters(schemaJSON json.RawMessage, params map[string]any, alsoSecret []string) (json.RawMessage, []string, error) {
	schema, err := StoredSchema(schemaJSON)
	if err != nil {
		return nil, unionNames(nil, alsoSecret), err
	}
	for _, name := range alsoSecret {
		if p, ok := schema[name]; ok && !p.Secret {
			p.Secret = true
			schema[name] = p
		}
	}
	secrets := unionNames(schema.Secrets(), alsoSecret)
	if params == nil {
		params = map[string]any{}
	}
	applied, err := schema.Apply(params)
	if err != nil {
		return nil, secrets, err
	}
	out, err := json.Marshal(applied)
	if err != nil {
		return nil, secrets, fmt.Errorf("encode parameters: %w", err)
	}
	return out, secrets, nil
}

// SecretNames returns the names of the secret parameters of a stored parameter schema,
// sorted; nil when there are none or the schema cannot be read.
func SecretNames(schemaJSON json.RawMessage) []string {
	schema, err := StoredSchema(schemaJSON)
	if err != nil {
		return nil
	}
	return schema.Secrets()
}

// RestoreMasked puts back, in sent, the original value of each secret parameter whose value
// sent is Mask: the caller saw the mask and meant "unchanged". A secret original does not
// have stays Mask, a value like any other. sent is modified and returned.
func RestoreMasked(sent, original map[string]any, secrets []string) map[string]any {
	for _, name := range secrets {
		if v, ok := sent[name].(string); !ok || v != Mask {
			continue
		}
		if orig, ok := original[name]; ok {
			sent[name] = orig
		}
	}
	return sent
}

// RestoreMaskedSchema puts back, in sent, the default and the enum of each secret parameter
// that sent gives as MaskSchema showed them, from current (the stored schema sent replaces):
// an action read, edited elsewhere and written back keeps its secret default and enum.
func RestoreMaskedSchema(sent Schema, current json.RawMessage) {
	cur, err := StoredSchema(current)
	if err != nil {
		return
	}
	for name, p := range sent {
		c, ok := cur[name]
		if !ok || !p.Secret || !c.Secret {
			continue
		}
		if d, ok := p.Default.(string); ok && d == Mask {
			p.Default = c.Default
		}
		if len(p.Enum) > 0 && len(p.Enum) == len(c.Enum) && !slices.ContainsFunc(p.Enum, func(e any) bool { return e != Mask }) {
			p.Enum = c.Enum
		}
		sent[name] = p
	}
}

// unionNames is the sorted union of two lists of names, nil when both are empty.
func unionNames(a, b []string) []string {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
