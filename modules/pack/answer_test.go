package pack

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAnswerSchema(t *testing.T) {
	t.Parallel()
	s, err := CompileAnswerSchema(json.RawMessage(`{"type":"object","required":["approved"],
		"properties":{"approved":{"type":"boolean"},"hosts":{"type":"array","items":{"type":"string"}}}}`))
	require.NoError(t, err)
	require.NoError(t, s.Check("response", json.RawMessage(`{"approved":true,"hosts":["a"]}`)))
	for answer, want := range map[string]string{
		`{"approved":"yes"}`:                 `response.approved: got string, want boolean`,
		`{}`:                                 `response: missing property 'approved'`,
		`{"approved":true,"hosts":["a", 3]}`: `response.hosts.1: got number, want string`,
		`[]`:                                 `response: got array, want object`,
		`{`:                                  `response: not JSON`,
	} {
		require.ErrorContains(t, s.Check("response", json.RawMessage(answer)), want, answer)
	}

	for schema, want := range map[string]string{
		`{"type":"thing"}`:                     `not a valid JSON Schema: schema.type: value must be one of`,
		`{"$ref":"https://example.org/s"}`:     `schema: not a valid JSON Schema`,
		`{"$ref":"file:///etc/passwd"}`:        `schema: not a valid JSON Schema`,
		`"text"`:                               `schema: want a JSON Schema, an object`,
		`{"properties":{"a":{"minimum":"x"}}}`: `not a valid JSON Schema: schema.properties.a.minimum: got string, want number`,
	} {
		_, err := CompileAnswerSchema(json.RawMessage(schema))
		require.ErrorContains(t, err, want, schema)
	}
}
