package ruleeval

import (
	"errors"
	"fmt"

	"github.com/expr-lang/expr/file"
)

// ErrNotBool is returned, wrapped, by Match when an expression condition yields something
// other than a bool, e.g. nil from a path missing in the event.
var ErrNotBool = errors.New("result is not a bool")

// PathError locates a problem inside a rule, so that an API can point the author at the
// offending entry instead of just rejecting the whole rule.
type PathError struct {
	// Path is where the problem is, e.g. "conditions[1].any[0]" or "action_params.message".
	Path string
	Err  error
}

// Error formats the error as "path: reason".
func (e *PathError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *PathError) Unwrap() error { return e.Err }

// exprError keeps expr-lang diagnostics on one line: expr appends a multi-line source snippet,
// which reads badly in API responses and log lines.
type exprError struct{ err error }

func (e exprError) Error() string {
	var fe *file.Error
	if errors.As(e.err, &fe) && fe.Line > 0 {
		return fmt.Sprintf("%s (%d:%d)", fe.Message, fe.Line, fe.Column)
	}
	return e.err.Error()
}

func (e exprError) Unwrap() error { return e.err }
