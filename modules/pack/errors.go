package pack

import (
	"errors"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a problem in one file of a pack. Load, LoadFS, Core and CheckReferences return it
// wrapped with the operation; errors.As finds it, so a caller such as the API can point a pack
// author at the file and field without parsing the message.
type Error struct {
	// File is the file's path relative to the pack directory, such as "actions/deploy.yaml".
	// It is empty when a schema is checked on its own.
	File string
	// Field is the dotted path of the offending field, such as "parameters.count.default".
	// It is empty when the problem concerns the file as a whole (unreadable, not YAML) or when
	// the message names the field itself.
	Field string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	for _, part := range []string{e.File, e.Field} {
		if part != "" {
			b.WriteString(part)
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// fieldError builds the usual shape of a validation error; the file is added by the loader,
// which is the only place that knows it.
func fieldError(field string, err error) *Error {
	return &Error{Field: field, Err: err}
}

// inFile sets the file on err, keeping the field of an *Error it already is.
func inFile(file string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.File = file
		return &c
	}
	return &Error{File: file, Err: err}
}

// yamlError turns yaml.v3's messages into one line that keeps the line numbers: a TypeError
// lists every problem on its own indented line under "yaml: unmarshal errors:", and syntax
// errors carry a "yaml: " prefix that says nothing once the file is named.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// joinField appends a key to a dotted field path.
func joinField(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}
