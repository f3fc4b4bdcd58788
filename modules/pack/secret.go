package pack

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/attune-go/attune/store/seal"
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

// CheckExecution validates params against s, an action's parameter schema (StoredSchema, read
// once per execution), and applies its defaults, returning the parameters to run with (the error names the
// parameter), and the names of its secret parameters, sorted, to record on the execution: an
// execution is masked by them wherever it is shown. They are the ones the schema
// declares secret and the names in alsoSecret (values a rerun copied from an execution that
// had them secret, or an enforcement recorded as secret), which are treated as secret in the
// error as well, and those whose value holds a seal token (a sealed secret, a secret key a
// template placed in it). Such a value is not checked: it is known only to the worker, which
// opens it. The names come back with an error too, so that an execution refused for its
// parameters still masks them.
func (s Schema) CheckExecution(params map[string]any, alsoSecret []string) (json.RawMessage, []string, error) {
	schema, cloned := s, false
	for _, name := range alsoSecret {
		if p, ok := schema[name]; ok && !p.Secret {
			if !cloned {
				schema, cloned = maps.Clone(s), true // the caller's schema stays as it is
			}
			p.Secret = true
			schema[name] = p
		}
	}
	alsoSecret = slices.Clip(alsoSecret) // appended to below, never the caller's array
	for name, v := range params {
		if HoldsToken(v) {
			alsoSecret = append(alsoSecret, name)
		}
	}
	secrets := unionNames(schema.Secrets(), alsoSecret)
	if params == nil {
		params = map[string]any{}
	}
	applied, err := schema.apply(params, sealedLater)
	if err != nil {
		return nil, secrets, err
	}
	out, err := json.Marshal(applied)
	if err != nil {
		return nil, secrets, fmt.Errorf("encode parameters: %w", err)
	}
	return out, secrets, nil
}

// sealedLater defers the check of a value that holds a seal token (package store/seal): a
// secret sealed when its enforcement or a rerun's original was created, or a secret key a
// template placed in it. Its value is known only to the worker, which opens it.
func sealedLater(_ Param, v any) (bool, error) {
	return HoldsToken(v), nil
}

// HoldsToken reports whether a seal token is anywhere in v, a decoded JSON value.
func HoldsToken(v any) bool {
	switch x := v.(type) {
	case string:
		return seal.Contains(x)
	case map[string]any:
		for _, e := range x {
			if HoldsToken(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if HoldsToken(e) {
				return true
			}
		}
	}
	return false
}

// errSealedValue refuses a seal token an author wrote into a pack or a rule: sealed values
// come from Attune alone (a secret sealed at creation, a secret key a template read), and a
// worker would open one for whoever could copy its text out of the database into a default,
// a rule or a workflow of theirs.
var errSealedValue = errors.New("holds a sealed value: sealed values come from Attune only")

// SealedAt reports whether a seal token is anywhere in v, a decoded JSON or YAML value (so
// that a token written with escapes, \u0061ttune:..., is found), a member's name included,
// and where: the path below v of the first one, members in name order (".a[2].b"; "" for v
// itself).
func SealedAt(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return "", seal.Contains(x)
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if seal.Contains(k) {
				return "." + k, true
			}
			if at, ok := SealedAt(x[k]); ok {
				return "." + k + at, true
			}
		}
	case []any:
		for i, e := range x {
			if at, ok := SealedAt(e); ok {
				return fmt.Sprintf("[%d]%s", i, at), true
			}
		}
	}
	return "", false
}

// refuseSealed refuses v, the value an author wrote at field, when it holds a seal token,
// naming where.
func refuseSealed(field string, v any) error {
	if at, ok := SealedAt(v); ok {
		return fieldError(field+at, errSealedValue)
	}
	return nil
}

// WithSealed returns secrets, sorted, with the names of the members of the JSON object
// params whose value holds a seal token: however a value came to be sealed (a secret key a
// template placed in it), it is masked by name like any secret.
func WithSealed(secrets []string, params json.RawMessage) []string {
	return unionNames(secrets, seal.Names(params))
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

// minMaskedText is the length, in bytes, of the shortest secret value MaskValues masks inside
// a longer string: a shorter one would garble ordinary text (a PIN of 42 would mask every
// "42"). The worker draws the same line when it scrubs results.
const minMaskedText = 6

// MaskValues returns the JSON document doc with the values of the secret parameters of an
// execution (params holds them, secrets names them) masked wherever they show up in it, for
// what is derived from an execution's input (a workflow's variables, its tasks' results): a
// value equal to a secret value becomes Mask, and so does each occurrence, in a string or a
// key, of the text of a secret value (a string, or a number as text) of minMaskedText bytes
// or more. A document it cannot read is masked whole when there are secret values at all.
func MaskValues(doc, params json.RawMessage, secrets []string) json.RawMessage {
	values := secretValues(params, secrets)
	if len(values) == 0 || len(doc) == 0 {
		return doc
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return maskJSON
	}
	m := valueMasker{values: values, texts: replacerOf(values)}
	out, changed := m.mask(v)
	if !changed {
		return doc
	}
	b, err := json.Marshal(out)
	if err != nil {
		return maskJSON
	}
	return b
}

// secretValues returns the values in params of the parameters named in secrets.
func secretValues(params json.RawMessage, secrets []string) []any {
	if len(secrets) == 0 || len(params) == 0 {
		return nil
	}
	var all map[string]any
	if json.Unmarshal(params, &all) != nil {
		return nil
	}
	var out []any
	for _, name := range secrets {
		if v, ok := all[name]; ok && v != nil {
			out = append(out, v)
		}
	}
	return out
}

// replacerOf replaces the texts of values long enough to mask inside strings, longest first
// so that a secret wins over another that is its prefix; nil when there are none.
func replacerOf(values []any) *strings.Replacer {
	var texts []string
	var collect func(v any)
	collect = func(v any) {
		switch x := v.(type) {
		case string:
			texts = append(texts, x)
		case float64:
			texts = append(texts, strconv.FormatFloat(x, 'f', -1, 64))
		case map[string]any:
			for _, e := range x {
				collect(e)
			}
		case []any:
			for _, e := range x {
				collect(e)
			}
		}
	}
	for _, v := range values {
		collect(v)
	}
	texts = slices.DeleteFunc(texts, func(s string) bool { return len(s) < minMaskedText })
	if len(texts) == 0 {
		return nil
	}
	slices.SortFunc(texts, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	texts = slices.Compact(texts)
	pairs := make([]string, 0, 2*len(texts))
	for _, s := range texts {
		pairs = append(pairs, s, Mask)
	}
	return strings.NewReplacer(pairs...)
}

// valueMasker masks secret values in a decoded JSON document.
type valueMasker struct {
	values []any
	texts  *strings.Replacer
}

// mask returns v masked, and whether anything in it was.
func (m valueMasker) mask(v any) (any, bool) {
	for _, s := range m.values {
		if reflect.DeepEqual(v, s) {
			return Mask, true
		}
	}
	switch x := v.(type) {
	case string:
		out := m.text(x)
		return out, out != x
	case map[string]any:
		changed := false
		out := make(map[string]any, len(x))
		for k, e := range x {
			masked, c := m.mask(e)
			key := m.text(k)
			out[key] = masked
			changed = changed || c || key != k
		}
		return out, changed
	case []any:
		changed := false
		out := make([]any, len(x))
		for i, e := range x {
			var c bool
			out[i], c = m.mask(e)
			changed = changed || c
		}
		return out, changed
	}
	return v, false
}

func (m valueMasker) text(s string) string {
	if m.texts == nil {
		return s
	}
	return m.texts.Replace(s)
}

// MaskSealed returns the JSON document doc with every string that holds a seal token (package
// store/seal) replaced by Mask: a sealed value is shown as any secret is, wherever it went (a
// workflow's variables, an output rendered from a sealed input, a parameter a secret key was
// rendered into). A document it cannot read is masked whole when it holds a token at all.
func MaskSealed(doc json.RawMessage) json.RawMessage {
	if !seal.Contains(string(doc)) {
		return doc
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return maskJSON
	}
	out, err := json.Marshal(maskSealedValue(v))
	if err != nil {
		return maskJSON
	}
	return out
}

// MaskSealedText returns the text s (a reason, an error) with every seal token in it
// replaced by Mask, the rest kept: what it says about a sealed value stays readable.
func MaskSealedText(s string) string { return seal.ReplaceTokens(s, Mask) }

func maskSealedValue(v any) any {
	switch x := v.(type) {
	case string:
		if seal.Contains(x) {
			return Mask
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if seal.Contains(k) {
				k = Mask
			}
			out[k] = maskSealedValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskSealedValue(e)
		}
		return out
	}
	return v
}
