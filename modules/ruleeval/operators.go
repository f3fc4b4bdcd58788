package ruleeval

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// operator is one StackStorm criteria operator. prepare validates the rule's value once at
// parse time and turns it into what test needs (a compiled regexp, a lower-cased string), so
// that a broken rule is refused when it is saved rather than on every event.
type operator struct {
	needsValue bool
	prepare    func(v any) (any, error)
	// test runs only on a field that exists and is not null; see evaluate. Nil means the
	// operator is about existence alone.
	test func(got, arg any, now time.Time) bool
	// negated operators hold where their positive twin does not, including on a missing field.
	negated bool
}

// evaluate applies op to the field. A positive operator never holds on a missing or null
// field, since there is nothing to compare, so its negation always does.
func (op *operator) evaluate(got any, found bool, arg any, now time.Time) bool {
	ok := found
	if op.test != nil {
		ok = found && got != nil && op.test(got, arg, now)
	}
	return ok != op.negated
}

var operators = func() map[string]*operator {
	ops := map[string]*operator{
		"equals":        {needsValue: true, prepare: anyValue, test: func(got, arg any, _ time.Time) bool { return looseEqual(got, arg) }},
		"iequals":       {needsValue: true, prepare: lowerScalar, test: testIEquals},
		"contains":      {needsValue: true, prepare: anyValue, test: testContains},
		"icontains":     {needsValue: true, prepare: lowerScalar, test: testIContains},
		"startswith":    {needsValue: true, prepare: scalar, test: stringTest(strings.HasPrefix, false)},
		"istartswith":   {needsValue: true, prepare: lowerScalar, test: stringTest(strings.HasPrefix, true)},
		"endswith":      {needsValue: true, prepare: scalar, test: stringTest(strings.HasSuffix, false)},
		"iendswith":     {needsValue: true, prepare: lowerScalar, test: stringTest(strings.HasSuffix, true)},
		"lessthan":      {needsValue: true, prepare: orderable, test: orderTest(func(c int) bool { return c < 0 })},
		"greaterthan":   {needsValue: true, prepare: orderable, test: orderTest(func(c int) bool { return c > 0 })},
		"inside":        {needsValue: true, prepare: container, test: testInside},
		"exists":        {}, // holds on a null field too: the key is there
		"regex":         {needsValue: true, prepare: regex(""), test: testRegex},
		"iregex":        {needsValue: true, prepare: regex("(?i)"), test: testRegex},
		"matchwildcard": {needsValue: true, prepare: wildcard, test: testWildcard},
		"timediff_lt":   {needsValue: true, prepare: seconds, test: timediffTest(func(d, limit float64) bool { return d < limit })},
		"timediff_gt":   {needsValue: true, prepare: seconds, test: timediffTest(func(d, limit float64) bool { return d > limit })},
	}
	for neg, pos := range map[string]string{
		"nequals": "equals", "ncontains": "contains", "ninside": "inside", "nexists": "exists",
	} {
		op := *ops[pos]
		op.negated = true
		ops[neg] = &op
	}
	return ops
}()

// aliases are StackStorm's short spellings.
var aliases = map[string]string{
	"eq": "equals", "neq": "nequals", "ieq": "iequals", "lt": "lessthan", "gt": "greaterthan",
	"in": "inside", "nin": "ninside", "td_lt": "timediff_lt", "td_gt": "timediff_gt",
}

func lookupOperator(name string) (*operator, error) {
	if canonical, ok := aliases[name]; ok {
		name = canonical
	}
	if op, ok := operators[name]; ok {
		return op, nil
	}
	return nil, fmt.Errorf("unknown operator %q (valid: %s; aliases: %s)", name,
		strings.Join(slices.Sorted(maps.Keys(operators)), ", "),
		strings.Join(slices.Sorted(maps.Keys(aliases)), ", "))
}

func anyValue(v any) (any, error) { return v, nil }

func scalar(v any) (any, error) {
	if !isScalar(v) {
		return nil, fmt.Errorf("value must be a string, number or bool, got %T", v)
	}
	return formatValue(v), nil
}

func lowerScalar(v any) (any, error) {
	s, err := scalar(v)
	if err != nil {
		return nil, err
	}
	return strings.ToLower(s.(string)), nil
}

func orderable(v any) (any, error) {
	if _, ok := v.(string); ok {
		return v, nil
	}
	if _, ok := toNumber(v); ok {
		return v, nil
	}
	return nil, fmt.Errorf("value must be a number or a string, got %T", v)
}

func container(v any) (any, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	if l, ok := asList(v); ok {
		return l, nil
	}
	return nil, fmt.Errorf("value must be a list or a string, got %T", v)
}

func regex(flags string) func(v any) (any, error) {
	return func(v any) (any, error) {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("value must be a string, got %T", v)
		}
		re, err := regexp.Compile(flags + s)
		if err != nil {
			return nil, fmt.Errorf("compile regex %q: %w", s, err)
		}
		return re, nil
	}
}

func wildcard(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("value must be a string, got %T", v)
	}
	// path.Match reports a malformed pattern whatever the name, so an empty one checks it.
	if _, err := path.Match(s, ""); err != nil {
		return nil, fmt.Errorf("check wildcard %q: %w", s, err)
	}
	return s, nil
}

func seconds(v any) (any, error) {
	n, ok := toNumber(v)
	if !ok {
		return nil, fmt.Errorf("value must be a number of seconds, got %T", v)
	}
	return n.float(), nil
}

func testIEquals(got, arg any, _ time.Time) bool {
	return isScalar(got) && strings.ToLower(formatValue(got)) == arg.(string)
}

// testContains follows Python's "in": substring for strings, membership for lists, key
// presence for maps.
func testContains(got, arg any, _ time.Time) bool {
	if s, ok := got.(string); ok {
		return isScalar(arg) && strings.Contains(s, formatValue(arg))
	}
	if l, ok := asList(got); ok {
		return slices.ContainsFunc(l, func(e any) bool { return looseEqual(e, arg) })
	}
	if m, ok := asMap(got); ok {
		if !isScalar(arg) {
			return false
		}
		_, ok := m[formatValue(arg)]
		return ok
	}
	return false
}

func testIContains(got, arg any, _ time.Time) bool {
	needle := arg.(string)
	if s, ok := got.(string); ok {
		return strings.Contains(strings.ToLower(s), needle)
	}
	if l, ok := asList(got); ok {
		return slices.ContainsFunc(l, func(e any) bool {
			s, ok := e.(string)
			return ok && strings.ToLower(s) == needle
		})
	}
	if m, ok := asMap(got); ok {
		for k := range m {
			if strings.ToLower(k) == needle {
				return true
			}
		}
	}
	return false
}

// stringTest builds the prefix and suffix operators, which only apply to strings: a number
// has no meaningful prefix.
func stringTest(fn func(s, affix string) bool, fold bool) func(got, arg any, _ time.Time) bool {
	return func(got, arg any, _ time.Time) bool {
		s, ok := got.(string)
		if !ok {
			return false
		}
		if fold {
			s = strings.ToLower(s)
		}
		return fn(s, arg.(string))
	}
}

func orderTest(want func(c int) bool) func(got, arg any, _ time.Time) bool {
	return func(got, arg any, _ time.Time) bool {
		c, ok := compareOrdered(got, arg)
		return ok && want(c)
	}
}

func testInside(got, arg any, _ time.Time) bool {
	if s, ok := arg.(string); ok {
		g, ok := got.(string)
		return ok && strings.Contains(s, g)
	}
	return slices.ContainsFunc(arg.([]any), func(e any) bool { return looseEqual(got, e) })
}

func testRegex(got, arg any, _ time.Time) bool {
	s, ok := got.(string)
	return ok && arg.(*regexp.Regexp).MatchString(s)
}

func testWildcard(got, arg any, _ time.Time) bool {
	s, ok := got.(string)
	if !ok {
		return false
	}
	matched, err := path.Match(arg.(string), s)
	return err == nil && matched
}

func timediffTest(want func(d, limit float64) bool) func(got, arg any, now time.Time) bool {
	return func(got, arg any, now time.Time) bool {
		t, ok := toTime(got)
		return ok && want(now.Sub(t).Seconds(), arg.(float64))
	}
}

// toTime reads a payload date: an RFC 3339 string or a number of Unix seconds.
func toTime(v any) (time.Time, bool) {
	if s, ok := v.(string); ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	n, ok := toNumber(v)
	if !ok {
		return time.Time{}, false
	}
	if n.isInt {
		return time.Unix(n.i, 0), true
	}
	sec := int64(n.f)
	return time.Unix(sec, int64((n.f-float64(sec))*1e9)), true
}
