package ruleeval

import (
	"errors"
	"fmt"
	"strings"
)

// CheckBool compiles cond against e's names as Bool evaluates it, refusing an expression
// whose type is known not to be bool (1 + 2, a string). An expression whose type only its
// data decides (result.ok) passes, and is held to bool when it runs.
func (e *Env) CheckBool(cond string) error {
	src, err := conditionSource(cond)
	if err != nil {
		return err
	}
	p, err := e.programs.get(src)
	if err != nil {
		return fmt.Errorf("compile expression %q: %w", src, err)
	}
	if err := checkBool(p); err != nil {
		return fmt.Errorf("expression %q: %w", src, err)
	}
	return nil
}

// Bool evaluates cond, written either bare ("succeeded() && result.ok") or as one whole
// template ("{{ succeeded() }}"), against values, and requires a bool: anything else,
// nil from a missing path included, is an error wrapping ErrNotBool.
func (e *Env) Bool(cond string, values map[string]any) (bool, error) {
	src, err := conditionSource(cond)
	if err != nil {
		return false, err
	}
	p, err := e.programs.get(src)
	if err != nil {
		return false, fmt.Errorf("compile expression %q: %w", src, err)
	}
	out, err := run(p, values)
	if err != nil {
		return false, fmt.Errorf("evaluate expression %q: %w", src, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("expression %q: %w, got %T", src, ErrNotBool, out)
	}
	return b, nil
}

// conditionSource is the expression of a condition: the text itself when it holds no
// template, or the one template it is. Text around a template would make a string, which is
// never a bool.
func conditionSource(cond string) (string, error) {
	if strings.TrimSpace(cond) == "" {
		return "", errors.New("empty expression")
	}
	if !strings.Contains(cond, "{{") {
		return strings.TrimSpace(cond), nil
	}
	segs, err := splitTemplate(cond)
	if err != nil {
		return "", err
	}
	src, ok := wholeTemplate(segs)
	if !ok {
		return "", fmt.Errorf("%q: want one expression, bare or as one {{ }} template, not text with templates in it", cond)
	}
	return src, nil
}
