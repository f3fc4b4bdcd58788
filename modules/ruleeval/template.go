package ruleeval

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/vm"
)

// paramsPath prefixes error paths so that they read like the rule document.
const paramsPath = "action_params"

// segment is a piece of a templated string: literal text, or the source of one {{ }}.
type segment struct {
	text   string
	isExpr bool
}

// ValidateTemplates checks that every {{ ... }} in params (walked recursively through maps and
// lists) compiles. Errors are *PathError naming the parameter, e.g. `action_params.message:
// ...`; when several parameters are broken, the first in key order is reported.
func ValidateTemplates(params map[string]any) error {
	if err := rules.Validate(params, paramsPath); err != nil {
		return err
	}
	_, err := ParamKeyRefs(params)
	return err
}

// ParamKeyRefs returns the keys a rule's action_params read. A rule reads no user's keys: it
// runs for none.
func ParamKeyRefs(params map[string]any) ([]KeyRef, error) {
	refs, err := rules.KeyRefs(params, paramsPath)
	if err != nil {
		return nil, err
	}
	if err := refuseUser(refs); err != nil {
		return nil, &PathError{Path: paramsPath, Err: err}
	}
	return refs, nil
}

// Validate checks that every {{ ... }} in v (walked recursively through maps and lists)
// compiles against e's names. Errors are *PathError naming the place under path, such as
// path.message or path[2]; when several places are broken, the first in key order is
// reported.
func (e *Env) Validate(v any, path string) error {
	return eachTemplate(v, path, func(src, path string) error {
		p, err := e.programs.get(src)
		if err != nil {
			return pathErrorf(path, "compile template %q: %w", src, err)
		}
		// A function's value renders as an address in text and cannot be encoded as JSON:
		// writing succeeded for succeeded() is a slip to point out, not a value.
		if t := p.Node().Type(); t != nil && t.Kind() == reflect.Func {
			return pathErrorf(path, "template %q is a function; call it: %s()", src, src)
		}
		return nil
	})
}

// eachTemplate calls fn with the source of every {{ }} template in the strings of v (walked
// through maps and lists) and the place it is at under path.
func eachTemplate(v any, path string, fn func(src, path string) error) error {
	return walkStrings(v, path, func(s, path string) error {
		if !strings.Contains(s, "{{") {
			return nil
		}
		segs, err := splitTemplate(s)
		if err != nil {
			return &PathError{Path: path, Err: err}
		}
		for _, seg := range segs {
			if seg.isExpr {
				if err := fn(seg.text, path); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Templated reports whether s holds {{ }} templates and, if it does, whether Render keeps the
// type of the value (s is one template and nothing else) rather than making text of it. It
// does not compile them: ValidateTemplates does.
func Templated(s string) (templated, keepsType bool) {
	if !strings.Contains(s, "{{") {
		return false, false
	}
	segs, err := splitTemplate(s)
	if err != nil {
		return true, false
	}
	_, whole := wholeTemplate(segs)
	return true, whole
}

// walkStrings calls fn on every string in v, visiting map keys in order so that the error
// reported for a broken rule does not change from one call to the next.
func walkStrings(v any, path string, fn func(s, path string) error) error {
	switch x := v.(type) {
	case string:
		return fn(x, path)
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if err := walkStrings(x[k], path+"."+k, fn); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := walkStrings(e, path+"["+strconv.Itoa(i)+"]", fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Render renders every string in params (recursively through maps and lists). A string that is
// exactly one template ("{{ event.payload.count }}", surrounding whitespace allowed) is
// replaced by the expression's value with its JSON type kept: a number stays a number, an
// object stays an object, and a missing path gives nil. A string mixing text and templates
// interpolates each value: strings as they are, nil as nothing, integral numbers without
// ".0", objects and lists as compact JSON. Other values pass through unchanged. params is not
// modified; the result shares no maps or lists with it or with the event. Errors are
// *PathError naming the parameter.
func Render(params map[string]any, in Input) (map[string]any, error) {
	out, err := rules.Render(params, paramsPath, func() map[string]any { return newEnv(in) })
	if err != nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

// Values gives what an Env's names hold for one evaluation, as a map from name to value
// whose values have the types the names were declared with. Render calls it at most once,
// on the first template it meets, because building the values often means copying data.
type Values func() map[string]any

// Render renders every string in v against e's names, as the package-level Render does a
// rule's parameters: a string that is one template keeps its value's type, text with
// templates in it interpolates them, and other values pass through. The result shares no
// maps or lists with v or with the values, so that it can be kept and changed. Errors are
// *PathError naming the place under path.
func (e *Env) Render(v any, path string, values Values) (any, error) {
	r := renderer{lang: e, values: values}
	return r.value(v, path)
}

// renderer carries one Render call; the environment is built once, on the first template.
type renderer struct {
	lang   *Env
	values Values
	env    map[string]any
	progs  map[string]*vm.Program
}

func (r *renderer) value(v any, path string) (any, error) {
	switch x := v.(type) {
	case string:
		return r.str(x, path)
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			e, err := r.value(x[k], path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = e
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = r.value(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

func (r *renderer) str(s, path string) (any, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	segs, err := splitTemplate(s)
	if err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	if whole, ok := wholeTemplate(segs); ok {
		v, err := r.eval(whole, path)
		if err != nil {
			return nil, err
		}
		return plain(v), nil
	}
	var b strings.Builder
	for _, seg := range segs {
		if !seg.isExpr {
			b.WriteString(seg.text)
			continue
		}
		v, err := r.eval(seg.text, path)
		if err != nil {
			return nil, err
		}
		b.WriteString(formatValue(v))
	}
	return b.String(), nil
}

func (r *renderer) eval(src, path string) (any, error) {
	p, ok := r.progs[src]
	if !ok {
		var err error
		if p, err = r.lang.programs.get(src); err != nil {
			return nil, pathErrorf(path, "compile template %q: %w", src, err)
		}
		if r.progs == nil {
			r.progs = map[string]*vm.Program{}
		}
		r.progs[src] = p
	}
	if r.env == nil {
		r.env = r.values()
	}
	v, err := run(p, r.env)
	if err != nil {
		return nil, pathErrorf(path, "evaluate template %q: %w", src, err)
	}
	return v, nil
}

// wholeTemplate reports the expression of a string that is one template and nothing else but
// whitespace, whose value keeps its type instead of being formatted into text.
func wholeTemplate(segs []segment) (string, bool) {
	src, found := "", false
	for _, seg := range segs {
		switch {
		case seg.isExpr && found:
			return "", false
		case seg.isExpr:
			src, found = seg.text, true
		case strings.TrimSpace(seg.text) != "":
			return "", false
		}
	}
	return src, found
}

// splitTemplate cuts s into literal text and the trimmed sources of its {{ }} templates.
func splitTemplate(s string) ([]segment, error) {
	var segs []segment
	offset := 0
	for {
		start := strings.Index(s[offset:], "{{")
		if start < 0 {
			if offset < len(s) {
				segs = append(segs, segment{text: s[offset:]})
			}
			return segs, nil
		}
		start += offset
		if start > offset {
			segs = append(segs, segment{text: s[offset:start]})
		}
		end, ok := closing(s[start+2:])
		if !ok {
			return nil, fmt.Errorf(`unclosed "{{" at offset %d`, start)
		}
		src := strings.TrimSpace(s[start+2 : start+2+end])
		if src == "" {
			return nil, errEmptyTemplate
		}
		segs = append(segs, segment{text: src, isExpr: true})
		offset = start + 2 + end + 2
	}
}

var errEmptyTemplate = errors.New("empty template {{ }}")

// closing finds the "}}" that ends a template, skipping braces and quotes that belong to the
// expression, so that map literals ({"a": {"b": 1}}) and strings holding "}}" work.
func closing(s string) (int, bool) {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			switch {
			case c == '\\' && quote != '`':
				i++
			case c == quote:
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'', '`':
			quote = c
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			} else if i+1 < len(s) && s[i+1] == '}' {
				return i, true
			}
		}
	}
	return 0, false
}
