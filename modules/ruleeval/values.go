package ruleeval

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// number holds a numeric value so that int (YAML), int64, float64 (JSON) and json.Number all
// compare alike; integers stay exact because float64 would round large IDs.
type number struct {
	i     int64
	f     float64
	isInt bool
}

func (n number) float() float64 {
	if n.isInt {
		return float64(n.i)
	}
	return n.f
}

func compareNumbers(a, b number) int {
	switch {
	case a.isInt && b.isInt:
		return cmp.Compare(a.i, b.i)
	case a.isInt:
		return -compareFloatInt(b.f, a.i)
	case b.isInt:
		return compareFloatInt(a.f, b.i)
	}
	return cmp.Compare(a.f, b.f)
}

// compareFloatInt compares exactly, since converting a large int64 to float64 rounds it.
func compareFloatInt(f float64, i int64) int {
	switch {
	case math.IsNaN(f), f < math.MinInt64:
		return -1
	case f >= math.MaxInt64: // float64(MaxInt64) is 2^63, one past the largest int64
		return 1
	}
	t := math.Trunc(f)
	if c := cmp.Compare(int64(t), i); c != 0 {
		return c
	}
	return cmp.Compare(f, t)
}

// toNumber reports v as a number. Numeric strings are not numbers: StackStorm does not coerce
// them either, and guessing would make "007" equal 7.
func toNumber(v any) (number, bool) {
	switch n := v.(type) {
	case int:
		return number{i: int64(n), isInt: true}, true
	case int64:
		return number{i: n, isInt: true}, true
	case float64:
		return number{f: n}, true
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return number{i: i, isInt: true}, true
		}
		if f, err := n.Float64(); err == nil {
			return number{f: f}, true
		}
		return number{}, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return number{i: rv.Int(), isInt: true}, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return number{i: int64(u), isInt: true}, true
		}
		return number{f: float64(rv.Uint())}, true
	case reflect.Float32, reflect.Float64:
		return number{f: rv.Float()}, true
	}
	return number{}, false
}

// isScalar reports whether v can stand for a string in the string operators.
func isScalar(v any) bool {
	if _, ok := v.(string); ok {
		return true
	}
	if _, ok := v.(bool); ok {
		return true
	}
	_, ok := toNumber(v)
	return ok
}

// looseEqual is StackStorm's string-normalised equality: numbers compare numerically so that
// 3 (YAML) equals 3.0 (JSON); anything else compares by its string form so that "3" equals 3.
func looseEqual(a, b any) bool {
	if a == nil || b == nil {
		return false
	}
	if na, ok := toNumber(a); ok {
		if nb, ok := toNumber(b); ok {
			return compareNumbers(na, nb) == 0
		}
	}
	return formatValue(a) == formatValue(b)
}

// compareOrdered orders two numbers or two strings; mixed types do not compare, because
// coercing would make "10" < 9 depend on which side happened to be quoted.
func compareOrdered(a, b any) (int, bool) {
	if na, ok := toNumber(a); ok {
		if nb, ok := toNumber(b); ok {
			return compareNumbers(na, nb), true
		}
		return 0, false
	}
	sa, ok := a.(string)
	if !ok {
		return 0, false
	}
	sb, ok := b.(string)
	if !ok {
		return 0, false
	}
	return strings.Compare(sa, sb), true
}

// formatValue is how a value reads inside text: strings as they are, nil as nothing, integral
// numbers without ".0", and objects and lists as compact JSON so that they can be parsed back.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	}
	if n, ok := toNumber(v); ok {
		if n.isInt {
			return strconv.FormatInt(n.i, 10)
		}
		return formatFloat(n.f)
	}
	v = plain(v)
	_, isMap := v.(map[string]any)
	_, isList := v.([]any)
	if !isMap && !isList {
		return fmt.Sprint(v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Values land in messages and commands, not HTML; escaping "<" would garble them.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func formatFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	// Same shape as encoding/json: plain digits in the usual range, exponent beyond it.
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// asList returns v as a list if it is one. Typed slices are accepted because Go callers build
// payloads by hand; []byte is not a list but bytes.
func asList(v any) ([]any, bool) {
	switch l := v.(type) {
	case []any:
		return l, true
	case []byte, string, nil:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

// asMap returns v as a map with string keys if it is one. map[any]any is accepted because
// older YAML decoders produce it.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case nil:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map {
		return nil, false
	}
	out := make(map[string]any, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		k, ok := iter.Key().Interface().(string)
		if !ok {
			if iter.Key().Kind() != reflect.String {
				return nil, false
			}
			k = iter.Key().String()
		}
		out[k] = iter.Value().Interface()
	}
	return out, true
}

// Plain returns a deep copy of v in the shapes encoding/json decodes to (map[string]any,
// []any, int64 or float64 for a json.Number), for a caller building an Env's values from
// data: expressions then see one kind of number, and nothing they return aliases the data.
func Plain(v any) any { return plain(v) }

// plain deep-copies v into the shapes encoding/json produces (map[string]any, []any, int64
// or float64 for json.Number), so expressions see one kind of number and callers get values
// that share nothing with the event.
func plain(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int, int64, float64:
		return x
	case json.Number:
		if n, ok := toNumber(x); ok {
			if n.isInt {
				return n.i
			}
			return n.f
		}
		return x.String()
	case eventEnv:
		return map[string]any{"id": x.ID, "trigger_ref": x.TriggerRef, "payload": plain(x.Payload)}
	case ruleEnv:
		return map[string]any{"ref": x.Ref}
	}
	if m, ok := asMap(v); ok {
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[k] = plain(e)
		}
		return out
	}
	if l, ok := asList(v); ok {
		out := make([]any, len(l))
		for i, e := range l {
			out[i] = plain(e)
		}
		return out
	}
	return v
}
