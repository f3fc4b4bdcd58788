package store

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Labels are what a worker says of itself (--worker-labels zone=eu,gpu=true), and, as a
// selector, the labels a worker must have to run an action: every one of them, with the same
// value. They are kept as a jsonb object.
type Labels map[string]string

// labelPattern holds both keys and values: words that read the same in a flag, a YAML file and
// a reason, with neither '=' nor ',' that would make "k=v,..." ambiguous.
var labelPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// ParseLabels reads "k=v,k2=v2"; the empty string is no labels. An error names the pair that
// is wrong.
func ParseLabels(s string) (Labels, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := Labels{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("label %q: want key=value", pair)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("label %q: key %s given twice", pair, k)
		}
		out[k] = v
		if err := checkLabel(k, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Check reports the first label, in key order, that is not valid.
func (l Labels) Check() error {
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if err := checkLabel(k, l[k]); err != nil {
			return err
		}
	}
	return nil
}

func checkLabel(k, v string) error {
	for _, part := range []struct{ what, s string }{{"key", k}, {"value", v}} {
		if !labelPattern.MatchString(part.s) {
			return fmt.Errorf("label %q: %s %q must be 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit", k+"="+v, part.what, part.s)
		}
	}
	return nil
}

// String is the canonical form, "k=v,k2=v2" in key order.
func (l Labels) String() string {
	pairs := make([]string, 0, len(l))
	for _, k := range slices.Sorted(maps.Keys(l)) {
		pairs = append(pairs, k+"="+l[k])
	}
	return strings.Join(pairs, ",")
}

// Satisfy reports whether labels l have every label of selector sel, with its value.
func (l Labels) Satisfy(sel Labels) bool {
	for k, v := range sel {
		if got, ok := l[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// selectorArg is a selector as a statement's argument: NULL for none, so that no selector and
// an empty one are the same.
func selectorArg(l Labels) any {
	if len(l) == 0 {
		return nil
	}
	b, _ := json.Marshal(l) // a map of strings always encodes
	return b
}
