package pack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// AnswerSchema is a checked JSON Schema that the answer to an inquiry (core.ask) must fit.
type AnswerSchema struct {
	schema *jsonschema.Schema
}

// answerSchemaURL names the one resource an answer schema is compiled from.
const answerSchemaURL = "attune:inquiry-schema.json"

// CompileAnswerSchema checks raw as a JSON Schema (the latest draft unless it says otherwise).
// A schema may not refer to anything outside itself: nothing is fetched or read.
func CompileAnswerSchema(raw json.RawMessage) (*AnswerSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema: not JSON: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		if _, ok := doc.(bool); !ok {
			return nil, errors.New("schema: want a JSON Schema, an object")
		}
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{})
	if err := c.AddResource(answerSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	s, err := c.Compile(answerSchemaURL)
	var invalid *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	switch {
	case errors.As(err, &invalid) && errors.As(invalid.Err, &ve):
		return nil, fmt.Errorf("not a valid JSON Schema: %v", explain("schema", ve))
	case err != nil:
		return nil, fmt.Errorf("schema: not a valid JSON Schema: %s", firstLine(strings.ReplaceAll(err.Error(), answerSchemaURL, "schema")))
	}
	return &AnswerSchema{schema: s}, nil
}

// Check reports whether answer fits the schema. Its error, an *Error, names the first part of
// the answer that does not, as a path under field ("response.approved: got string, want
// boolean"), in its Field too.
func (a *AnswerSchema) Check(field string, answer json.RawMessage) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(answer))
	if err != nil {
		return fieldError(field, fmt.Errorf("not JSON: %w", err))
	}
	err = a.schema.Validate(v)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	return explain(field, ve)
}

// explain names the first leaf of a validation failure: where under field, and what.
func explain(field string, ve *jsonschema.ValidationError) error {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	path := append([]string{field}, ve.InstanceLocation...)
	msg := "does not fit the schema"
	if out := ve.BasicOutput(); out.Error != nil {
		msg = out.Error.String()
	}
	return fieldError(strings.Join(path, "."), errors.New(msg))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
