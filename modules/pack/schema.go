package pack

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Parameter types. They are the JSON types, so that values decoded from an API request or a
// jsonb column are checked without conversion.
const (
	TypeString  = "string"
	TypeInteger = "integer"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeObject  = "object"
	TypeArray   = "array"
	// TypeAny accepts any JSON value. It exists for payloads with no fixed shape, such as the
	// body of a webhook.
	TypeAny = "any"
)

var knownTypes = []string{TypeString, TypeInteger, TypeNumber, TypeBoolean, TypeObject, TypeArray, TypeAny}

// paramNamePattern keeps parameter names usable as environment variables: the shell runner
// passes each parameter as ATTUNE_PARAM_<NAME>.
var paramNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Schema describes parameters or a payload: name → Param.
type Schema map[string]Param

// Param describes one parameter.
type Param struct {
	// Type is one of the Type constants.
	Type        string `json:"type" yaml:"type"`
	Description string `json:"description,omitempty" yaml:"description"`
	Required    bool   `json:"required,omitempty" yaml:"required"`
	// Default is used when no value is given. It must be of Type.
	Default any `json:"default,omitempty" yaml:"default"`
	// Enum, when set, lists the only values allowed. Each must be of Type.
	Enum []any `json:"enum,omitempty" yaml:"enum"`
	// Secret values, the default and the enum values included, are shown as Mask by every
	// surface (API answers, the CLI, messages, logs) and left out of errors; the worker scrubs
	// them from the results it records. The action still gets them in clear; PostgreSQL holds
	// an execution's values sealed (store/seal), a secret default as the author wrote it (see
	// MaskParameters and the execution's recorded secret names).
	Secret bool `json:"secret,omitempty" yaml:"secret"`
}

// MarshalJSON writes a nil Schema as {}: schemas are stored in jsonb columns that are never
// null.
func (s Schema) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]Param(s))
}

// Check validates the schema itself: parameter names, known types, and defaults and enum
// values of the declared type. The first problem in name order is returned as an *Error whose
// field names the parameter, such as `parameters.count.default: want integer, got "three"`.
func (s Schema) Check() error {
	_, err := s.clean("parameters")
	return err
}

// clean checks the schema and returns a copy whose defaults and enum values are normalised
// by jsonValue. Fields in errors start at base ("parameters", "output").
func (s Schema) clean(base string) (Schema, error) {
	if s == nil {
		return nil, nil
	}
	out := make(Schema, len(s))
	for _, name := range sortedKeys(s) {
		p := s[name]
		field := joinField(base, name)
		if !paramNamePattern.MatchString(name) {
			return nil, fieldError(field, errors.New("name must be letters, digits and _, not starting with a digit, so that it can be an environment variable"))
		}
		switch {
		case p.Type == "":
			return nil, fieldError(field+".type", errors.New("required"))
		case !slices.Contains(knownTypes, p.Type):
			return nil, fieldError(field+".type", fmt.Errorf("unknown type %q; want %s", p.Type, orList(knownTypes)))
		}
		if p.Enum != nil {
			if len(p.Enum) == 0 {
				return nil, fieldError(field+".enum", errors.New("empty; leave it out to allow any value"))
			}
			enum := make([]any, len(p.Enum))
			for i, e := range p.Enum {
				c, err := p.coerce(e)
				if err != nil {
					return nil, fieldError(fmt.Sprintf("%s.enum[%d]", field, i), shortError(err))
				}
				enum[i] = c
			}
			p.Enum = enum
		}
		if templatedDefault(p.Default) {
			// Rendered as each execution is created (RenderDefaults), so checked then.
			if err := checkDefaultTemplate(p); err != nil {
				return nil, fieldError(field+".default", err)
			}
		} else if p.Default != nil {
			c, err := p.coerce(p.Default)
			if err == nil {
				err = p.inEnum(c)
			}
			if err != nil {
				return nil, fieldError(field+".default", shortError(err))
			}
			p.Default = c
		}
		if err := refuseSealed(field+".default", p.Default); err != nil {
			return nil, err
		}
		if err := refuseSealed(field+".enum", p.Enum); err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}

// Apply validates values against the schema and returns a new map with defaults filled in.
// Unknown names, missing required ones, values of the wrong type and values outside the enum
// are errors naming the parameter; the first one in name order is returned, so errors do not
// change from run to run. A nil value counts as not given.
//
// Values come out normalised: integers as int64 (a float64 with no fractional part, as JSON
// decoding gives, is accepted), numbers as float64, objects as map[string]any and arrays as
// []any, all deep copies. The input is never modified. Secret values never appear in errors.
func (s Schema) Apply(values map[string]any) (map[string]any, error) {
	return s.apply(values, nil)
}

// paramError is a problem with one parameter; its text is Apply's, and checks that name
// fields their own way (action_params.count) take the name from it.
type paramError struct {
	name string
	err  error
}

func (e *paramError) Error() string { return fmt.Sprintf("parameter %q: %v", e.name, e.err) }
func (e *paramError) Unwrap() error { return e.err }

// ParamName names the parameter an error of Apply or CheckExecution is about, for an API that
// points a form at the parameter's field; ok is false for any other error.
func ParamName(err error) (name string, ok bool) {
	var pe *paramError
	if errors.As(err, &pe) {
		return pe.name, true
	}
	return "", false
}

// apply is Apply. A value for which later answers true counts as given but is neither checked
// nor normalised: its value is known only later, such as a rule's {{ }} template before an
// event renders it. later may refuse the value instead.
func (s Schema) apply(values map[string]any, later func(p Param, v any) (bool, error)) (map[string]any, error) {
	names := sortedKeys(s)
	for name := range values {
		if _, ok := s[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := make(map[string]any, len(s))
	for _, name := range names {
		p, known := s[name]
		if !known {
			if len(s) == 0 {
				return nil, &paramError{name, errors.New("unknown; none are accepted")}
			}
			return nil, &paramError{name, fmt.Errorf("unknown; want %s", orList(sortedKeys(s)))}
		}
		v := values[name]
		if v == nil {
			// A {{ }} default is rendered before, by RenderDefaults; here it gives nothing.
			def := p.Default
			if templatedDefault(def) {
				def = nil
			}
			if def == nil && p.Required {
				return nil, &paramError{name, errors.New("required")}
			}
			if def == nil {
				continue
			}
			v = def
		}
		if later != nil {
			deferred, err := later(p, v)
			if err != nil {
				return nil, &paramError{name, err}
			}
			if deferred {
				out[name] = v
				continue
			}
		}
		c, err := p.coerce(v)
		if err == nil {
			err = p.inEnum(c)
		}
		if err != nil {
			return nil, &paramError{name, err}
		}
		out[name] = c
	}
	return out, nil
}

// Secrets lists the names of secret parameters, sorted; nil when there are none.
func (s Schema) Secrets() []string {
	var names []string
	for name, p := range s {
		if p.Secret {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// coerce returns v in the canonical form for the parameter's type, or an error saying what
// was wanted and what was got.
func (p Param) coerce(v any) (any, error) {
	c, err := jsonValue(v, "")
	if err != nil {
		return nil, err
	}
	ok := false
	switch p.Type {
	case TypeString:
		_, ok = c.(string)
	case TypeBoolean:
		_, ok = c.(bool)
	case TypeObject:
		_, ok = c.(map[string]any)
	case TypeArray:
		_, ok = c.([]any)
	case TypeAny:
		ok = true
	case TypeInteger:
		switch n := c.(type) {
		case int:
			c, ok = int64(n), true
		case float64:
			// 2^63 is exact in float64; anything at or past it would overflow int64.
			if n == math.Trunc(n) && n >= math.MinInt64 && n < math.MaxInt64 {
				c, ok = int64(n), true
			}
		}
	case TypeNumber:
		switch n := c.(type) {
		case int:
			c, ok = float64(n), true
		case float64:
			ok = true
		}
	default:
		return nil, fmt.Errorf("unknown type %q", p.Type)
	}
	if !ok {
		return nil, &typeError{want: p.Type, got: v, secret: p.Secret}
	}
	return c, nil
}

// typeError is a value of the wrong type. Apply's messages say the kind of value got as well
// as the value; Check's name only the value, as the author can see its kind in the file.
type typeError struct {
	want   string
	got    any
	secret bool
}

func (e *typeError) Error() string {
	kind, shown := kindOf(e.got), show(e.got)
	if e.secret || kind == shown {
		return fmt.Sprintf("want %s, got %s", e.want, kind)
	}
	return fmt.Sprintf("want %s, got %s %s", e.want, kind, shown)
}

// short is the message Check gives.
func (e *typeError) short() error {
	if e.secret {
		return fmt.Errorf("want %s, got %s", e.want, kindOf(e.got))
	}
	return fmt.Errorf("want %s, got %s", e.want, show(e.got))
}

// inEnum checks a coerced value against the enum, which clean has coerced the same way (an
// unchecked schema's enum is coerced here, so that 1 and 1.0 still match).
func (p Param) inEnum(c any) error {
	if p.Enum == nil {
		return nil
	}
	shown := make([]string, 0, len(p.Enum))
	for _, e := range p.Enum {
		ce, err := p.coerce(e)
		if err == nil && reflect.DeepEqual(ce, c) {
			return nil
		}
		shown = append(shown, show(e))
	}
	if p.Secret {
		return errors.New("not one of the allowed values")
	}
	return fmt.Errorf("%s is not one of %s", show(c), strings.Join(shown, ", "))
}

// shortError gives a type error in Check's form and leaves others alone.
func shortError(err error) error {
	var te *typeError
	if errors.As(err, &te) {
		return te.short()
	}
	return err
}

// orList renders "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CheckPayload validates an event payload against a trigger's output schema. Unlike Apply
// it allows fields the schema does not name (payloads describe the outside world, which adds
// fields as it likes) and fills in nothing; declared fields must have their type, and
// required ones must be there. The error names the field.
func (s Schema) CheckPayload(payload map[string]any) error {
	for _, name := range sortedKeys(s) {
		p := s[name]
		v, given := payload[name]
		if !given || v == nil {
			if p.Required {
				return fmt.Errorf("field %q: required", name)
			}
			continue
		}
		c, err := p.coerce(v)
		if err == nil {
			err = p.inEnum(c)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", name, err)
		}
	}
	return nil
}
