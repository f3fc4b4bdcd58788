package ruleeval

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
)

// Input is what conditions and templates see of an event.
//
// Leaf conditions address the payload by dot path ("body.commits.0.id"). Templates and
// expression conditions use expr-lang over this environment:
//
//	event.id, event.trigger_ref, event.payload   the event
//	trigger                                      the payload again, as StackStorm rules spell it
//	rule.ref                                     the rule being evaluated
//	kv.system.<name>, kv.pack.<name>             the datastore's keys (Input.KV)
//
// A path missing from the payload reads as nil rather than failing, because events of one
// trigger routinely differ in which optional fields they carry.
type Input struct {
	EventID    int64
	TriggerRef string
	// Payload is the event's decoded JSON or YAML. Numbers may be int, int64, float64 or
	// json.Number; they all compare alike.
	Payload map[string]any
	RuleRef string
	// KV holds the keys the rule's templates and conditions read (see KV and KeyRefs); a
	// secret key as its seal token.
	KV map[string]any
}

// Condition is a parsed, validated condition tree. The zero Condition matches every event.
// A Condition is immutable and safe for concurrent use.
type Condition struct {
	root node
	// keys are the keys its expressions read.
	keys []KeyRef
}

// KeyRefs returns the keys the condition's expressions read.
func (c Condition) KeyRefs() []KeyRef { return c.keys }

// node is one element of the condition tree.
type node interface {
	match(c *evalCtx) (bool, error)
}

// evalCtx carries one evaluation. The expression environment is built on first use because
// it copies the payload, and most rules have no expression condition.
type evalCtx struct {
	in  Input
	now time.Time
	env map[string]any
}

func (c *evalCtx) environment() map[string]any {
	if c.env == nil {
		c.env = newEnv(c.in)
	}
	return c.env
}

// rootPath prefixes error paths so that they read like the rule document.
const rootPath = "conditions"

// kindKeys are the keys that decide what a condition map is; a map has exactly one of them.
var kindKeys = []string{"all", "any", "not", "expression", "field"}

// ParseConditions validates raw conditions as they come from a rule's YAML or JSON (nil or
// empty list: match all). Errors are *PathError naming the offending place inside the
// conditions, e.g. `conditions[1].any[0]: unknown operator "equal"`.
func ParseConditions(raw any) (Condition, error) {
	if raw == nil {
		return Condition{}, nil
	}
	if l, ok := asList(raw); ok && len(l) == 0 {
		return Condition{}, nil
	}
	n, err := parseNode(raw, rootPath)
	if err != nil {
		return Condition{}, err
	}
	c := Condition{root: n}
	var walk func(n node) error
	walk = func(n node) error {
		switch x := n.(type) {
		case allNode:
			for _, child := range x {
				if err := walk(child); err != nil {
					return err
				}
			}
		case anyNode:
			for _, child := range x {
				if err := walk(child); err != nil {
					return err
				}
			}
		case notNode:
			return walk(x.node)
		case exprNode:
			refs, err := rules.programs.keyRefs(x.src)
			if err == nil {
				err = refuseUser(refs)
			}
			if err != nil {
				return &PathError{Path: x.path, Err: err}
			}
			for _, r := range refs {
				if !slices.Contains(c.keys, r) {
					c.keys = append(c.keys, r)
				}
			}
		}
		return nil
	}
	if err := walk(n); err != nil {
		return Condition{}, err
	}
	return c, nil
}

// Match reports whether the event satisfies the conditions. Operators never fail on the shape
// of the data (a regex against a number is simply false); an error means an expression
// condition failed at run time or did not return a bool.
func (c Condition) Match(in Input) (bool, error) {
	return c.MatchAt(in, time.Now())
}

// MatchAt is Match with the clock that the timediff operators measure against, so that tests
// and replays of old events get stable answers.
func (c Condition) MatchAt(in Input, now time.Time) (bool, error) {
	if c.root == nil {
		return true, nil
	}
	return c.root.match(&evalCtx{in: in, now: now})
}

func pathErrorf(path, format string, args ...any) error {
	return &PathError{Path: path, Err: fmt.Errorf(format, args...)}
}

func parseNode(raw any, path string) (node, error) {
	if l, ok := asList(raw); ok {
		return parseList(l, path)
	}
	m, ok := asMap(raw)
	if !ok {
		return nil, pathErrorf(path, "condition must be a map or a list, got %T", raw)
	}
	return parseMap(m, path)
}

func parseList(l []any, path string) (allNode, error) {
	out := make(allNode, len(l))
	for i, raw := range l {
		n, err := parseNode(raw, path+"["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func parseMap(m map[string]any, path string) (node, error) {
	var kinds []string
	for _, k := range kindKeys {
		if _, ok := m[k]; ok {
			kinds = append(kinds, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(kindKeys, k) && k != "operator" && k != "value" {
			return nil, pathErrorf(path, "unknown key %q", k)
		}
	}
	_, hasOp := m["operator"]
	_, hasValue := m["value"]
	switch {
	case len(kinds) > 1:
		return nil, pathErrorf(path, "condition has more than one of %s", strings.Join(kinds, ", "))
	case len(kinds) == 0 && (hasOp || hasValue):
		return nil, pathErrorf(path, `leaf needs "field"`)
	case len(kinds) == 0:
		return nil, pathErrorf(path, "condition needs one of %s", strings.Join(kindKeys, ", "))
	case kinds[0] != "field" && hasOp:
		return nil, pathErrorf(path, `"operator" only belongs in a leaf with "field"`)
	case kinds[0] != "field" && hasValue:
		return nil, pathErrorf(path, `"value" only belongs in a leaf with "field"`)
	}

	kind := kinds[0]
	sub := path + "." + kind
	switch kind {
	case "all", "any":
		l, ok := asList(m[kind])
		if !ok {
			return nil, pathErrorf(sub, "must be a list, got %T", m[kind])
		}
		if kind == "any" && len(l) == 0 {
			// An empty any can never hold; a rule that never fires is surely a mistake.
			return nil, pathErrorf(sub, "needs at least one condition")
		}
		children, err := parseList(l, sub)
		if err != nil {
			return nil, err
		}
		if kind == "any" {
			return anyNode(children), nil
		}
		return children, nil
	case "not":
		n, err := parseNode(m["not"], sub)
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	case "expression":
		return parseExpression(m["expression"], path)
	}
	return parseLeaf(m, path)
}

func parseExpression(raw any, path string) (node, error) {
	src, ok := raw.(string)
	if !ok || strings.TrimSpace(src) == "" {
		return nil, pathErrorf(path, `"expression" must be a non-empty string`)
	}
	p, err := compile(rules.programs.decl, src, true)
	if err != nil {
		return nil, pathErrorf(path, "compile expression %q: %w", src, err)
	}
	return exprNode{path: path, src: src, prog: p}, nil
}

func parseLeaf(m map[string]any, path string) (node, error) {
	field, ok := m["field"].(string)
	if !ok {
		return nil, pathErrorf(path, `"field" must be a string, got %T`, m["field"])
	}
	segs, err := parseFieldPath(field)
	if err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	rawOp, ok := m["operator"]
	if !ok {
		return nil, pathErrorf(path, `leaf needs "operator"`)
	}
	name, ok := rawOp.(string)
	if !ok {
		return nil, pathErrorf(path, `"operator" must be a string, got %T`, rawOp)
	}
	op, err := lookupOperator(name)
	if err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	leaf := leafNode{field: segs, op: op}
	if !op.needsValue {
		return leaf, nil
	}
	// A null value is treated as absent: comparing with null never holds, so the rule
	// could never fire.
	if m["value"] == nil {
		return nil, pathErrorf(path, `operator %q needs "value"`, name)
	}
	leaf.arg, err = op.prepare(m["value"])
	if err != nil {
		return nil, pathErrorf(path, "operator %q: %w", name, err)
	}
	return leaf, nil
}

// allNode holds when every child does; it is also what a plain list means.
type allNode []node

func (n allNode) match(c *evalCtx) (bool, error) {
	for _, child := range n {
		ok, err := child.match(c)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// anyNode holds when at least one child does.
type anyNode []node

func (n anyNode) match(c *evalCtx) (bool, error) {
	for _, child := range n {
		ok, err := child.match(c)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// notNode holds when its child does not.
type notNode struct{ node }

func (n notNode) match(c *evalCtx) (bool, error) {
	ok, err := n.node.match(c)
	if err != nil {
		return false, err
	}
	return !ok, nil
}

// exprNode is an expr-lang condition, compiled at parse time.
type exprNode struct {
	path string
	src  string
	prog *vm.Program
}

func (n exprNode) match(c *evalCtx) (bool, error) {
	out, err := run(n.prog, c.environment())
	if err != nil {
		return false, pathErrorf(n.path, "evaluate expression %q: %w", n.src, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, pathErrorf(n.path, "expression %q: %w, got %T", n.src, ErrNotBool, out)
	}
	return b, nil
}

// leafNode applies an operator to one field of the payload.
type leafNode struct {
	field []string
	op    *operator
	arg   any
}

func (n leafNode) match(c *evalCtx) (bool, error) {
	got, found := lookup(c.in.Payload, n.field)
	return n.op.evaluate(got, found, n.arg, c.now), nil
}
