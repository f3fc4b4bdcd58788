package ruleeval

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

// eventEnv and ruleEnv are structs rather than maps so that expr's checker rejects a typo
// such as event.paylod at parse time instead of letting it read as nil forever.
type eventEnv struct {
	ID         int64          `expr:"id" json:"id"`
	TriggerRef string         `expr:"trigger_ref" json:"trigger_ref"`
	Payload    map[string]any `expr:"payload" json:"payload"`
}

type ruleEnv struct {
	Ref string `expr:"ref" json:"ref"`
}

// getFunc is what member access on payload data is rewritten to. The "$" keeps it out of the
// way of names a rule author would pick.
const getFunc = "$get"

// newEnv builds what templates and expressions see of an event. The payload is copied and its
// json.Numbers turned into numbers, so expressions can do arithmetic on them and nothing they
// return aliases the event.
func newEnv(in Input) map[string]any {
	payload, _ := plain(in.Payload).(map[string]any)
	return map[string]any{
		"event":   eventEnv{ID: in.EventID, TriggerRef: in.TriggerRef, Payload: payload},
		"trigger": payload,
		"rule":    ruleEnv{Ref: in.RuleRef},
	}
}

// compile compiles an expression against the shape of newEnv's result; asBool refuses an
// expression whose type is known not to be bool.
func compile(src string, asBool bool) (*vm.Program, error) {
	opts := []expr.Option{
		expr.Env(map[string]any{
			"event":   eventEnv{},
			"trigger": map[string]any{},
			"rule":    ruleEnv{},
		}),
		expr.Function(getFunc, safeGet, new(func(any, any) any)),
		expr.Patch(safeMembers{}),
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, exprError{err}
	}
	// Checked here rather than with expr.AsBool, which also makes a nil result read as false
	// at run time: a condition on a missing path should surface, not quietly never match.
	if t := p.Node().Type(); asBool && t.Kind() != reflect.Bool && t.Kind() != reflect.Interface {
		return nil, fmt.Errorf("%w, got %s", ErrNotBool, t)
	}
	return p, nil
}

// run evaluates a compiled program.
func run(p *vm.Program, env map[string]any) (any, error) {
	out, err := expr.Run(p, env)
	if err != nil {
		return nil, exprError{err}
	}
	return out, nil
}

// safeMembers rewrites member access on data (a.b, a[0]) into calls to safeGet. expr's own
// access fails on nil ("cannot fetch deeper from <nil>") and on an index out of range, and
// optional chaining would make every author write ?. everywhere; payloads are ragged, so a
// missing path has to read as nil. Access on the env structs is left alone so that the checker
// still validates their field names.
type safeMembers struct{}

func (safeMembers) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Method {
		return
	}
	if t := m.Node.Type(); t != nil && t.Kind() == reflect.Struct {
		return
	}
	ast.Patch(node, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: getFunc},
		Arguments: []ast.Node{m.Node, m.Property},
	})
}

func safeGet(params ...any) (any, error) {
	if len(params) != 2 {
		return nil, fmt.Errorf("%s: want 2 arguments, got %d", getFunc, len(params))
	}
	return member(params[0], params[1]), nil
}

// member reads key from base, or nil when there is nothing there.
func member(base, key any) any {
	switch b := base.(type) {
	case nil:
		return nil
	case map[string]any:
		k, ok := key.(string)
		if !ok {
			return nil
		}
		return b[k]
	case []any:
		i, ok := listIndex(key, len(b))
		if !ok {
			return nil
		}
		return b[i]
	}
	return fetch(base, key)
}

// fetch falls back to expr's own access for anything else (strings, typed maps and slices),
// keeping its semantics but turning its panics into a missing value.
func fetch(base, key any) (v any) {
	defer func() {
		if recover() != nil {
			v = nil
		}
	}()
	return runtime.Fetch(base, key)
}

// listIndex accepts what expr accepts as an index, counting negative indexes from the end.
func listIndex(key any, n int) (int, bool) {
	num, ok := toNumber(key)
	if !ok {
		return 0, false
	}
	var i int
	switch {
	case num.isInt:
		i = int(num.i)
	case num.f == float64(int64(num.f)):
		i = int(num.f)
	default:
		return 0, false
	}
	if i < 0 {
		i += n
	}
	if i < 0 || i >= n {
		return 0, false
	}
	return i, true
}

// maxCachedPrograms bounds the template cache. Templates come from rules, not events, so the
// bound is only reached when rules churn; past it, templates are compiled on each render.
const maxCachedPrograms = 4096

// programCache keeps compiled templates across renders because a rule renders the same
// templates on every event it matches.
type programCache struct {
	m sync.Map // source -> *vm.Program
	n atomic.Int64
}

var templates programCache

func (c *programCache) get(src string) (*vm.Program, error) {
	if p, ok := c.m.Load(src); ok {
		return p.(*vm.Program), nil
	}
	p, err := compile(src, false)
	if err != nil {
		return nil, err
	}
	if c.n.Load() < maxCachedPrograms {
		if _, loaded := c.m.LoadOrStore(src, p); !loaded {
			c.n.Add(1)
		}
	}
	return p, nil
}
