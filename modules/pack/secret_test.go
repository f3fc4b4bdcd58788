package pack

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMaskParameters(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, params string
		secrets      []string
		want         string
	}{
		{"secret values masked, whatever their type", `{"token": "s3cr3t", "pin": 1234, "cfg": {"k": "v"}, "host": "h"}`,
			[]string{"cfg", "pin", "token"}, `{"token": "********", "pin": "********", "cfg": "********", "host": "h"}`},
		{"a secret not given is not added", `{"host": "h"}`, []string{"token"}, `{"host": "h"}`},
		{"no secrets", `{"token": "s3cr3t"}`, nil, `{"token": "s3cr3t"}`},
		{"not an object is masked whole", `"s3cr3t"`, []string{"token"}, `"********"`},
		{"an array too", `["s3cr3t"]`, []string{"token"}, `"********"`},
		{"null has nothing to hide", `null`, []string{"token"}, `null`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.JSONEq(t, tt.want, string(MaskParameters(json.RawMessage(tt.params), tt.secrets)))
		})
	}
	require.Empty(t, MaskParameters(nil, []string{"token"}))
}

func TestMaskSchema(t *testing.T) {
	t.Parallel()
	schema := `{
		"token": {"type": "string", "secret": true, "default": "s3cr3t", "description": "The token."},
		"tier": {"type": "string", "secret": true, "enum": ["gold", "silver"], "default": "gold"},
		"pin": {"type": "integer", "secret": true},
		"host": {"type": "string", "default": "h", "enum": ["h", "i"]}}`
	require.JSONEq(t, `{
		"token": {"type": "string", "secret": true, "default": "********", "description": "The token."},
		"tier": {"type": "string", "secret": true, "enum": ["********", "********"], "default": "********"},
		"pin": {"type": "integer", "secret": true},
		"host": {"type": "string", "default": "h", "enum": ["h", "i"]}}`, string(MaskSchema(json.RawMessage(schema))))
	plain := json.RawMessage(`{"host": {"type": "string", "default": "h"}}`)
	require.Equal(t, string(plain), string(MaskSchema(plain)), "nothing secret: as it was")
	require.Equal(t, `"********"`, string(MaskSchema(json.RawMessage(`{"token": "not a parameter"}`))), "unreadable: masked whole")
}

func TestCheckExecution(t *testing.T) {
	t.Parallel()
	schema, err := StoredSchema(json.RawMessage(`{
		"token": {"type": "string", "secret": true},
		"api_key": {"type": "string", "secret": true, "default": "k3y-default"},
		"count": {"type": "integer"},
		"host": {"type": "string"}}`))
	require.NoError(t, err)

	params, secrets, err := schema.CheckExecution(map[string]any{"token": "t0ken-value", "count": 2}, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"token": "t0ken-value", "api_key": "k3y-default", "count": 2}`, string(params))
	require.Equal(t, []string{"api_key", "token"}, secrets)

	// Names inherited as secret are recorded, and treated as secret in errors, though the
	// schema does not call them so.
	_, secrets, err = schema.CheckExecution(map[string]any{"count": "c0unt-value"}, []string{"count", "gone"})
	require.EqualError(t, err, `parameter "count": want integer, got string`)
	require.Equal(t, []string{"api_key", "count", "gone", "token"}, secrets, "names come back with the error")

	// The schema is read once per execution and used for every check: an inherited name
	// does not stay secret in it for the next.
	_, secrets, err = schema.CheckExecution(map[string]any{"count": 3}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"api_key", "token"}, secrets)
}

func TestRestoreMasked(t *testing.T) {
	t.Parallel()
	original := map[string]any{"token": "t0ken", "pin": 1234.0, "host": "h"}
	sent := map[string]any{"token": Mask, "pin": Mask, "host": Mask, "new": Mask}
	require.Equal(t, map[string]any{"token": "t0ken", "pin": 1234.0, "host": Mask, "new": Mask},
		RestoreMasked(sent, original, []string{"new", "pin", "token"}),
		"the mask keeps a secret's original; for what is not secret, or has no original, it is a value")
	require.Nil(t, RestoreMasked(nil, original, []string{"token"}))
}

func TestRestoreMaskedSchema(t *testing.T) {
	t.Parallel()
	current := json.RawMessage(`{
		"token": {"type": "string", "secret": true, "default": "s3cr3t"},
		"tier": {"type": "string", "secret": true, "enum": ["gold", "silver"]},
		"host": {"type": "string", "default": "h"}}`)
	sent := Schema{
		"token": {Type: TypeString, Secret: true, Default: Mask},
		"tier":  {Type: TypeString, Secret: true, Enum: []any{Mask, Mask}},
		"host":  {Type: TypeString, Default: Mask},
	}
	RestoreMaskedSchema(sent, current)
	require.Equal(t, "s3cr3t", sent["token"].Default)
	require.Equal(t, []any{"gold", "silver"}, sent["tier"].Enum)
	require.Equal(t, Mask, sent["host"].Default, "not secret: the mask is a value")

	changed := Schema{"tier": {Type: TypeString, Secret: true, Enum: []any{Mask, "bronze"}}}
	RestoreMaskedSchema(changed, current)
	require.Equal(t, []any{Mask, "bronze"}, changed["tier"].Enum, "an enum edited is taken as sent")
}

func TestMaskValues(t *testing.T) {
	t.Parallel()
	params := `{"token": "s3cr3t-token", "pin": 42, "cfg": {"user": "bob", "password": "hunter22"}, "host": "h"}`
	secrets := []string{"cfg", "pin", "token", "absent"}
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"equal values masked, at any depth and of any type",
			`{"a": "s3cr3t-token", "b": [42, {"c": {"user": "bob", "password": "hunter22"}}], "host": "h", "n": 43}`,
			`{"a": "********", "b": ["********", {"c": "********"}], "host": "h", "n": 43}`},
		{"long texts masked inside strings and keys, short ones not",
			`{"header": "Bearer s3cr3t-token", "login": "bob:hunter22", "s3cr3t-token": 1, "pin": "42"}`,
			`{"header": "Bearer ********", "login": "bob:********", "********": 1, "pin": "42"}`},
		{"nothing secret left as it is", `{"host": "h", "n": [1, 2]}`, `{"host": "h", "n": [1, 2]}`},
		{"a bare value", `"s3cr3t-token"`, `"********"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.JSONEq(t, tt.want, string(MaskValues(json.RawMessage(tt.doc), json.RawMessage(params), secrets)))
		})
	}
	unchanged := json.RawMessage(`{"host":  "h"}`)
	require.Equal(t, unchanged, MaskValues(unchanged, json.RawMessage(params), secrets), "what has no secret is not rewritten")
	require.Equal(t, json.RawMessage(`"********"`), MaskValues(json.RawMessage(`{bad`), json.RawMessage(params), secrets))
	require.Equal(t, json.RawMessage(`{bad`), MaskValues(json.RawMessage(`{bad`), json.RawMessage(params), nil), "no secrets, nothing to hide")
}
