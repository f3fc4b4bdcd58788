package ruleeval

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
)

// parseFieldPath splits a condition's dot path. Empty segments are refused at parse time
// because "a..b" or a trailing dot is always a typo, and would otherwise silently never match.
func parseFieldPath(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New(`"field" is empty`)
	}
	segs := strings.Split(s, ".")
	for _, seg := range segs {
		if seg == "" {
			return nil, errors.New(`"field" ` + strconv.Quote(s) + " has an empty segment")
		}
	}
	return segs, nil
}

// lookup follows path from root; found is false as soon as a segment does not exist, which is
// what the exists and n* operators act on.
func lookup(root any, path []string) (v any, found bool) {
	cur := root
	for _, seg := range path {
		cur, found = child(cur, seg)
		if !found {
			return nil, false
		}
	}
	return cur, true
}

// child reads one segment: a key in a map, or an index in a list when the segment is a
// non-negative decimal number.
func child(cur any, seg string) (any, bool) {
	switch c := cur.(type) {
	case map[string]any:
		v, ok := c[seg]
		return v, ok
	case []any:
		i, ok := index(seg, len(c))
		if !ok {
			return nil, false
		}
		return c[i], true
	case nil, string, []byte:
		return nil, false
	}
	rv := reflect.ValueOf(cur)
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, false
		}
		v := rv.MapIndex(reflect.ValueOf(seg).Convert(rv.Type().Key()))
		if !v.IsValid() {
			return nil, false
		}
		return v.Interface(), true
	case reflect.Slice, reflect.Array:
		i, ok := index(seg, rv.Len())
		if !ok {
			return nil, false
		}
		return rv.Index(i).Interface(), true
	}
	return nil, false
}

// index parses a list index strictly: strconv.Atoi would also take "+1" and "-1", and a
// negative index in a path is more likely a key than a request to count from the end.
func index(seg string, n int) (int, bool) {
	for _, r := range seg {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(seg)
	if err != nil || i >= n {
		return 0, false
	}
	return i, true
}
