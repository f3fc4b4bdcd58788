package ruleeval

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

// Env is one language of templates and expressions: the names they may use, to which the
// checker holds them when they compile (a typo such as event.paylod or varz.count is refused
// when a rule or a workflow is saved rather than reading nil forever), and the programs
// compiled so far. Rules have one Env; package workflow declares its own. An Env is safe for
// concurrent use.
type Env struct {
	programs programCache
}

// NewEnv declares the names of a language, each by an example of its value, whose type is
// what the checker knows of the name: a struct has just its fields, a map[string]any is data
// whose missing paths read as nil, a func is a function the expressions may call, and nil
// declares a value of any shape (a task's result may be an object, a list or text).
func NewEnv(names map[string]any) *Env {
	d := declaration{examples: make(map[string]any, len(names))}
	for name, example := range names {
		d.examples[name] = example
		if example == nil {
			d.anyShape = append(d.anyShape, name)
		}
	}
	return &Env{programs: programCache{decl: d}}
}

// declaration is what the checker knows of an Env's names.
type declaration struct {
	examples map[string]any
	// anyShape are the names declared by nil.
	anyShape []string
}

// option declares the names to expr. expr types a nil example as the nil value, which has no
// members and takes no arithmetic; a name of any shape is given the unknown type instead, the
// one expr gives an interface{} field, so that result.stdout, result[0] and item + 1 all check
// and the data decides at run time. (expr's types.Any would say the same through a types.Map
// environment, but that environment cannot hold the structs the rules' names are.)
func (d declaration) option() expr.Option {
	return func(c *conf.Config) {
		c.WithEnv(d.examples)
		for _, name := range d.anyShape {
			c.Env.Fields[name] = nature.Nature{}
		}
	}
}

// getFunc is what member access on payload data is rewritten to. The "$" keeps it out of the
// way of names a rule author would pick.
const getFunc = "$get"

// compile compiles an expression against the names declared; asBool refuses an expression
// whose type is known not to be bool.
func compile(decl declaration, src string, asBool bool) (*vm.Program, error) {
	opts := []expr.Option{
		decl.option(),
		expr.Function(getFunc, safeGet, new(func(any, any) any)),
		expr.Patch(safeMembers{}),
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, exprError{err}
	}
	if asBool {
		if err := checkBool(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkBool refuses a program whose type is known not to be bool. It is checked here rather
// than with expr.AsBool, which also makes a nil result read as false at run time: a
// condition on a missing path should surface, not quietly never match.
func checkBool(p *vm.Program) error {
	if t := p.Node().Type(); t.Kind() != reflect.Bool && t.Kind() != reflect.Interface {
		return fmt.Errorf("%w, got %s", ErrNotBool, t)
	}
	return nil
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

// maxCachedPrograms bounds an Env's program cache. Templates come from rules and workflow
// definitions, not events, so the bound is only reached when those churn; past it, templates
// are compiled on each render.
const maxCachedPrograms = 4096

// programCache keeps the programs compiled against one set of names across renders, since a
// rule renders the same templates on every event it matches and a workflow on every task: the
// cache is keyed by the names (one cache an Env) and the source. The zero programCache
// declares no names.
type programCache struct {
	decl declaration
	m    sync.Map // source -> *vm.Program
	n    atomic.Int64
	refs sync.Map // source -> []KeyRef
}

func (c *programCache) get(src string) (*vm.Program, error) {
	if p, ok := c.m.Load(src); ok {
		return p.(*vm.Program), nil
	}
	p, err := compile(c.decl, src, false)
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
