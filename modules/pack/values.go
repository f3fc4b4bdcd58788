package pack

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// jsonValue returns a deep copy of v in the shapes the rest of Attune works with: nil, bool,
// string, int, float64, map[string]any and []any. YAML gives map[any]any for maps with
// non-string keys and may give int64 or uint64; Go callers may pass typed slices and maps;
// JSON decoding may give json.Number. Normalising once here means values marshal to JSON,
// compare with reflect.DeepEqual and switch on a small set of types everywhere else.
// Values JSON cannot carry (non-string keys, NaN, infinities, funcs) are errors naming the
// nested field under base.
func jsonValue(v any, base string) (any, error) {
	switch v := v.(type) {
	case nil, bool, string, int:
		return v, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fieldError(base, fmt.Errorf("%v cannot be represented in JSON", v))
		}
		return v, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return int(i), nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fieldError(base, fmt.Errorf("bad number %q", string(v)))
		}
		return jsonValue(f, base)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := jsonValue(e, joinField(base, k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fieldError(base, fmt.Errorf("keys must be strings, got %s %v", kindOf(k), k))
			}
			c, err := jsonValue(e, joinField(base, ks))
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := jsonValue(e, fmt.Sprintf("%s[%d]", base, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return reflectValue(reflect.ValueOf(v), base)
}

// reflectValue handles the types jsonValue does not list: other integer and float widths,
// named string and bool types, typed slices and maps with string keys.
func reflectValue(rv reflect.Value, base string) (any, error) {
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt {
			return int(u), nil
		}
		// Past int's range only a float can hold it, as it would after a JSON round trip.
		return float64(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return jsonValue(rv.Float(), base)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			c, err := jsonValue(rv.Index(i).Interface(), fmt.Sprintf("%s[%d]", base, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fieldError(base, fmt.Errorf("map keys are %s; keys must be strings", rv.Type().Key()))
		}
		if rv.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			k := it.Key().String()
			c, err := jsonValue(it.Value().Interface(), joinField(base, k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return jsonValue(rv.Elem().Interface(), base)
	}
	return nil, fieldError(base, fmt.Errorf("a %s cannot be represented in JSON", rv.Type()))
}

// jsonMap is jsonValue for the maps rules carry; a missing map becomes an empty one so that
// it stores as {} rather than null.
func jsonMap(m map[string]any, field string) (map[string]any, error) {
	if m == nil {
		return map[string]any{}, nil
	}
	v, err := jsonValue(m, field)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// kindOf names a value's JSON kind for error messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "integer"
	case float32, float64, json.Number:
		return "number"
	case map[string]any, map[any]any:
		return "object"
	case []any:
		return "array"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map:
		return "object"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// maxShown keeps error messages one readable line when a value is a long string.
const maxShown = 60

// show renders a scalar for an error message; objects and arrays are named by kind only, as
// they may be large.
func show(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > maxShown {
			return strconv.Quote(v[:maxShown]) + "…"
		}
		return strconv.Quote(v)
	case nil:
		return "null"
	case json.Number:
		return string(v)
	}
	switch kindOf(v) {
	case "boolean", "integer", "number":
		return fmt.Sprint(v)
	}
	return kindOf(v)
}
