package ruleeval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// KVName is the name under which templates read the datastore's keys: kv.<scope>.<name>.
const KVName = "kv"

// The scopes a template names: the system's keys, those of the pack of the rule, workflow or
// action, and those of the identity that requested the execution.
const (
	ScopeSystem = "system"
	ScopePack   = "pack"
	ScopeUser   = "user"
)

var scopes = []string{ScopeSystem, ScopePack, ScopeUser}

// KeyRef is one key a template reads, kv.<Scope>.<Name>.
type KeyRef struct {
	Scope string
	Name  string
}

func (r KeyRef) String() string { return KVName + "." + r.Scope + "." + r.Name }

// errDynamicKV refuses kv read any other way than by literal names: the keys a template reads
// are found when it compiles, so that a render reads just those, in one query.
var errDynamicKV = errors.New("read keys as kv.<scope>.<name>, with the scope (system, pack or user) and the name written out")

// keyRefsOf finds the keys the expression src reads.
func keyRefsOf(src string) ([]KeyRef, error) {
	if !strings.Contains(src, KVName) {
		return nil, nil
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, exprError{err}
	}
	f := &kvFinder{named: map[*ast.IdentifierNode]bool{}}
	ast.Walk(&tree.Node, f)
	if f.err != nil {
		return nil, f.err
	}
	for _, id := range f.idents {
		if !f.named[id] {
			return nil, errDynamicKV
		}
	}
	return f.refs, nil
}

// kvFinder collects kv.<scope>.<name> and every use of kv, so that a use that names no key is
// refused.
type kvFinder struct {
	refs   []KeyRef
	idents []*ast.IdentifierNode
	named  map[*ast.IdentifierNode]bool
	err    error
}

func (f *kvFinder) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if n.Value == KVName {
			f.idents = append(f.idents, n)
		}
	case *ast.MemberNode:
		inner, ok := n.Node.(*ast.MemberNode)
		if !ok {
			return
		}
		id, ok := inner.Node.(*ast.IdentifierNode)
		if !ok || id.Value != KVName {
			return
		}
		scope, ok1 := inner.Property.(*ast.StringNode)
		name, ok2 := n.Property.(*ast.StringNode)
		if !ok1 || !ok2 {
			return
		}
		if !slices.Contains(scopes, scope.Value) {
			f.err = fmt.Errorf("kv.%s: unknown scope; want kv.system, kv.pack or kv.user", scope.Value)
			return
		}
		f.named[id] = true
		ref := KeyRef{Scope: scope.Value, Name: name.Value}
		if !slices.Contains(f.refs, ref) {
			f.refs = append(f.refs, ref)
		}
	}
}

// KeyRefs returns the keys the {{ }} templates in v (walked through maps and lists) read, each
// once, in the order met. A template that does not compile, or reads kv otherwise than as
// kv.<scope>.<name>, is a *PathError naming the place under path.
func (e *Env) KeyRefs(v any, path string) ([]KeyRef, error) {
	var refs []KeyRef
	err := eachTemplate(v, path, func(src, path string) error {
		found, err := e.programs.keyRefs(src)
		if err != nil {
			return pathErrorf(path, "template %q: %w", src, err)
		}
		for _, r := range found {
			if !slices.Contains(refs, r) {
				refs = append(refs, r)
			}
		}
		return nil
	})
	return refs, err
}

// ExpressionKeyRefs is KeyRefs for a bare expression (a workflow's when, a condition).
func (e *Env) ExpressionKeyRefs(src string) ([]KeyRef, error) {
	if s, err := conditionSource(src); err == nil {
		src = s
	}
	return e.programs.keyRefs(src)
}

// keyRefs caches keyRefsOf by source, as programs are cached.
func (c *programCache) keyRefs(src string) ([]KeyRef, error) {
	if v, ok := c.refs.Load(src); ok {
		return v.([]KeyRef), nil
	}
	refs, err := keyRefsOf(src)
	if err != nil {
		return nil, err
	}
	if c.n.Load() < maxCachedPrograms {
		c.refs.Store(src, refs)
	}
	return refs, nil
}

// Key is the value of one key as a template reads it: a key's JSON value, or for a secret
// key the seal token of its value, which stays sealed until a worker opens it.
type Key struct {
	Value  json.RawMessage
	Secret bool
}

// KV builds the value of kv from the keys found: kv.<scope>.<name> for each. A key not found
// reads as nil, as any missing path does.
func KV(found map[KeyRef]Key) (map[string]any, error) {
	kv := map[string]any{}
	for ref, k := range found {
		dec := json.NewDecoder(bytes.NewReader(k.Value))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", ref, err)
		}
		scope, _ := kv[ref.Scope].(map[string]any)
		if scope == nil {
			scope = map[string]any{}
			kv[ref.Scope] = scope
		}
		scope[ref.Name] = plain(v)
	}
	return kv, nil
}

// RefuseSecretKeys returns an error naming the first key of refs that found holds secret: an
// expression that decides (a condition, a transition) cannot read a value sealed until the
// worker opens it.
func RefuseSecretKeys(refs []KeyRef, found map[KeyRef]Key, what string) error {
	for _, r := range refs {
		if found[r].Secret {
			return fmt.Errorf("%s read %s, a secret key: a secret is opened only by the worker that runs an action, so %s cannot read it", what, r, what)
		}
	}
	return nil
}

// refuseUser refuses kv.user in refs, for a rule: it runs for no identity.
func refuseUser(refs []KeyRef) error {
	for _, r := range refs {
		if r.Scope == ScopeUser {
			return fmt.Errorf("%s: a rule runs for no user, so it has no user keys; use kv.system or kv.pack", r)
		}
	}
	return nil
}

// keyName and keyFound are the shapes a store gives keys in (store.KeyName, store.KeyFound),
// so that the modules that look keys up convert without copying field by field.
type (
	keyName  interface{ ~struct{ Scope, Name string } }
	keyFound interface {
		~struct {
			Value  json.RawMessage
			Secret bool
		}
	}
)

// NamesAs converts refs to a store's key names.
func NamesAs[N keyName](refs []KeyRef) []N {
	out := make([]N, len(refs))
	for i, r := range refs {
		out[i] = N(r)
	}
	return out
}

// FoundFrom converts what a store found to the keys KV and RefuseSecretKeys take.
func FoundFrom[N keyName, K keyFound](rows map[N]K) map[KeyRef]Key {
	out := make(map[KeyRef]Key, len(rows))
	for n, k := range rows {
		out[KeyRef(n)] = Key(k)
	}
	return out
}
