package workflow

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A definition is read from yaml.Node rather than decoded into structs: tasks and publishes
// are mappings whose order means something, and every error has to name its dotted path.

// fieldErrorf is a problem at path, in task (empty outside tasks).
func fieldErrorf(task, path, format string, args ...any) *Error {
	return &Error{Task: task, Field: path, Err: fmt.Errorf(format, args...)}
}

// join appends key to a dotted path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexed(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// resolve follows aliases (*anchor) to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports an absent value written out: "key:" or "key: null".
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe shows what a node is, for "want X, got Y" messages: a scalar as written, a
// string quoted so that "3" and 3 read apart.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// entry is one key of a mapping with its value.
type entry struct {
	key   string
	value *yaml.Node
	path  string
}

// entries lists a mapping's keys in order, refusing keys not in known (all keys when known is
// nil), non-string keys and a key written twice, which YAML would otherwise resolve silently.
func entries(task string, n *yaml.Node, path string, known ...string) ([]entry, error) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return nil, fieldErrorf(task, path, "want a mapping, got %s", describe(n))
	}
	out := make([]entry, 0, len(n.Content)/2)
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			return nil, fieldErrorf(task, path, "line %d: keys must be strings, got %s", k.Line, describe(k))
		}
		if known != nil && !slices.Contains(known, k.Value) {
			return nil, fieldErrorf(task, join(path, k.Value), "line %d: unknown key; want one of %s", k.Line, strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return nil, fieldErrorf(task, join(path, k.Value), "line %d: written twice", k.Line)
		}
		seen[k.Value] = true
		out = append(out, entry{key: k.Value, value: n.Content[i+1], path: join(path, k.Value)})
	}
	return out, nil
}

// stringValue reads a string scalar.
func stringValue(task string, n *yaml.Node, path string) (string, error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", fieldErrorf(task, path, "want a string, got %s", describe(n))
	}
	return n.Value, nil
}

// intValue reads a whole number in [low, high].
func intValue(task string, n *yaml.Node, path string, low, high int) (int, error) {
	n = resolve(n)
	var i int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		return 0, fieldErrorf(task, path, "want a whole number, got %s", describe(n))
	}
	switch {
	case i < low && high == math.MaxInt32:
		return 0, fieldErrorf(task, path, "want %d or more, got %d", low, i)
	case i < low || i > high:
		return 0, fieldErrorf(task, path, "want %d to %d, got %d", low, high, i)
	}
	return i, nil
}

// secondsValue reads a number of seconds, fractions allowed, in [0, high].
func secondsValue(task string, n *yaml.Node, path string, high float64) (float64, error) {
	n = resolve(n)
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
		return 0, fieldErrorf(task, path, "want a number of seconds, got %s", describe(n))
	}
	if math.IsNaN(f) || f < 0 || f > high {
		return 0, fieldErrorf(task, path, "want 0 to %s seconds, got %s", formatSeconds(high), n.Value)
	}
	return f, nil
}

func formatSeconds(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// stringList reads a string or a list of strings: a transition's do may name one task bare.
func stringList(task string, n *yaml.Node, path string) ([]string, error) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		s, err := stringValue(task, n, path)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fieldErrorf(task, path, "want a string or a list of strings, got %s", describe(n))
	}
	out := make([]string, len(n.Content))
	for i, e := range n.Content {
		s, err := stringValue(task, e, indexed(path, i))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// value reads data (a template, a literal, or a structure of them) into the shapes
// encoding/json works with: nil, bool, string, int (int64 or uint64 past int's range),
// float64, map[string]any and []any. A definition is stored as JSON; NaN and the infinities,
// which JSON cannot carry, are refused.
func value(task string, n *yaml.Node, path string) (any, error) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		es, err := entries(task, n, path)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(es))
		for _, e := range es {
			if out[e.key], err = value(task, e.value, e.path); err != nil {
				return nil, err
			}
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, e := range n.Content {
			var err error
			if out[i], err = value(task, e, indexed(path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, &Error{Task: task, Field: path, Err: err}
		}
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil, fieldErrorf(task, path, "%s cannot be represented in JSON", n.Value)
		}
		return v, nil
	}
	return nil, fieldErrorf(task, path, "want a value, got %s", describe(n))
}

// dataMap reads a mapping of data, or null for none.
func dataMap(task string, n *yaml.Node, path string) (map[string]any, error) {
	if isNull(n) {
		return nil, nil
	}
	if resolve(n).Kind != yaml.MappingNode {
		return nil, fieldErrorf(task, path, "want a mapping, got %s", describe(n))
	}
	v, err := value(task, n, path)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// document reads data as one YAML document holding a mapping.
func document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Err: errors.New("empty definition")}
		}
		return nil, &Error{Err: yamlError(err)}
	}
	// A second document would otherwise be ignored without a word.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &Error{Err: fmt.Errorf("line %d: more than one YAML document", extra.Line)}
	case !errors.Is(err, io.EOF):
		return nil, &Error{Err: yamlError(err)}
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Err: fmt.Errorf("want a mapping of input, vars, tasks and output, got %s", describe(root))}
	}
	return root, nil
}

// yamlError drops yaml.v3's "yaml: " prefix, which says nothing once the file is named.
func yamlError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}
