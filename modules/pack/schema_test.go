package pack

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSchemaCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		schema  Schema
		wantErr string
	}{
		{name: "nil", schema: nil},
		{name: "every type with a default", schema: Schema{
			"s": {Type: TypeString, Default: "x"},
			"i": {Type: TypeInteger, Default: 3},
			"f": {Type: TypeInteger, Default: 3.0},
			"n": {Type: TypeNumber, Default: 1.5},
			"b": {Type: TypeBoolean, Default: false},
			"o": {Type: TypeObject, Default: map[string]any{"a": 1}},
			"a": {Type: TypeArray, Default: []any{1, "two"}},
			"x": {Type: TypeAny, Default: "anything"},
		}},
		{name: "enum with default", schema: Schema{"m": {Type: TypeString, Enum: []any{"GET", "POST"}, Default: "GET"}}},
		{name: "missing type", schema: Schema{"count": {}}, wantErr: "parameters.count.type: required"},
		{name: "unknown type", schema: Schema{"count": {Type: "int"}},
			wantErr: `parameters.count.type: unknown type "int"; want string, integer, number, boolean, object, array or any`},
		{name: "default of the wrong type", schema: Schema{"count": {Type: TypeInteger, Default: "three"}},
			wantErr: `parameters.count.default: want integer, got "three"`},
		{name: "fractional default for an integer", schema: Schema{"count": {Type: TypeInteger, Default: 2.5}},
			wantErr: `parameters.count.default: want integer, got 2.5`},
		{name: "object default that is an array", schema: Schema{"o": {Type: TypeObject, Default: []any{}}},
			wantErr: `parameters.o.default: want object, got array`},
		{name: "secret default not shown", schema: Schema{"pw": {Type: TypeString, Default: 1234, Secret: true}},
			wantErr: `parameters.pw.default: want string, got integer`},
		{name: "enum value of the wrong type", schema: Schema{"m": {Type: TypeString, Enum: []any{"GET", 2}}},
			wantErr: `parameters.m.enum[1]: want string, got 2`},
		{name: "empty enum", schema: Schema{"m": {Type: TypeString, Enum: []any{}}},
			wantErr: "parameters.m.enum: empty"},
		{name: "default outside enum", schema: Schema{"m": {Type: TypeString, Enum: []any{"GET"}, Default: "PUT"}},
			wantErr: `parameters.m.default: "PUT" is not one of "GET"`},
		{name: "name not usable as a variable", schema: Schema{"my-param": {Type: TypeString}},
			wantErr: "parameters.my-param: name must be letters, digits and _"},
		{name: "default JSON cannot carry", schema: Schema{"o": {Type: TypeObject, Default: map[any]any{1: "x"}}},
			wantErr: "parameters.o.default: keys must be strings, got integer 1"},
		{name: "first problem in name order", schema: Schema{"b": {Type: "bad"}, "a": {Type: "worse"}},
			wantErr: `parameters.a.type: unknown type "worse"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.schema.Check()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			var perr *Error
			require.ErrorAs(t, err, &perr)
			require.Empty(t, perr.File)
		})
	}
}

func TestSchemaApply(t *testing.T) {
	t.Parallel()
	schema := Schema{
		"message": {Type: TypeString, Required: true},
		"count":   {Type: TypeInteger, Default: 1},
		"ratio":   {Type: TypeNumber},
		"force":   {Type: TypeBoolean},
		"headers": {Type: TypeObject},
		"tags":    {Type: TypeArray},
		"body":    {Type: TypeAny},
		"method":  {Type: TypeString, Enum: []any{"GET", "POST"}, Default: "GET"},
		"level":   {Type: TypeInteger, Enum: []any{1, 2, 3}},
		"token":   {Type: TypeString, Secret: true},
		"pin":     {Type: TypeInteger, Secret: true, Enum: []any{1234}},
	}
	tests := []struct {
		name    string
		values  map[string]any
		want    map[string]any
		wantErr string
	}{
		{name: "defaults filled in", values: map[string]any{"message": "hi"},
			want: map[string]any{"message": "hi", "count": int64(1), "method": "GET"}},
		{name: "nil counts as not given", values: map[string]any{"message": "hi", "count": nil, "ratio": nil},
			want: map[string]any{"message": "hi", "count": int64(1), "method": "GET"}},
		{name: "every type", values: map[string]any{
			"message": "hi", "count": 7, "ratio": 2, "force": true, "headers": map[string]any{"a": "b"},
			"tags": []string{"x", "y"}, "body": []any{1.5, nil}, "method": "POST", "level": int64(2), "token": "t",
		}, want: map[string]any{
			"message": "hi", "count": int64(7), "ratio": 2.0, "force": true, "headers": map[string]any{"a": "b"},
			"tags": []any{"x", "y"}, "body": []any{1.5, nil}, "method": "POST", "level": int64(2), "token": "t",
		}},
		{name: "integer from a whole float64", values: map[string]any{"message": "hi", "count": 3.0},
			want: map[string]any{"message": "hi", "count": int64(3), "method": "GET"}},
		{name: "integer and number from json.Number", values: map[string]any{"message": "hi", "count": json.Number("4"), "ratio": json.Number("0.5")},
			want: map[string]any{"message": "hi", "count": int64(4), "ratio": 0.5, "method": "GET"}},
		{name: "enum matches a float64 integer", values: map[string]any{"message": "hi", "level": 3.0},
			want: map[string]any{"message": "hi", "count": int64(1), "method": "GET", "level": int64(3)}},
		{name: "integer from a fractional float64", values: map[string]any{"message": "hi", "count": 2.5},
			wantErr: `parameter "count": want integer, got number 2.5`},
		{name: "integer from a float64 past int64", values: map[string]any{"message": "hi", "count": 1e19},
			wantErr: `parameter "count": want integer, got number 1e+19`},
		{name: "required missing", values: map[string]any{},
			wantErr: `parameter "message": required`},
		{name: "required nil", values: map[string]any{"message": nil},
			wantErr: `parameter "message": required`},
		{name: "unknown name", values: map[string]any{"message": "hi", "colour": "red"},
			wantErr: `parameter "colour": unknown; want body, count, force, headers, level, message, method, pin, ratio, tags or token`},
		{name: "string mismatch", values: map[string]any{"message": 5},
			wantErr: `parameter "message": want string, got integer 5`},
		{name: "integer mismatch", values: map[string]any{"message": "hi", "count": "x"},
			wantErr: `parameter "count": want integer, got string "x"`},
		{name: "number mismatch", values: map[string]any{"message": "hi", "ratio": "1.5"},
			wantErr: `parameter "ratio": want number, got string "1.5"`},
		{name: "boolean mismatch", values: map[string]any{"message": "hi", "force": "true"},
			wantErr: `parameter "force": want boolean, got string "true"`},
		{name: "object mismatch", values: map[string]any{"message": "hi", "headers": []any{"a"}},
			wantErr: `parameter "headers": want object, got array`},
		{name: "array mismatch", values: map[string]any{"message": "hi", "tags": map[string]any{}},
			wantErr: `parameter "tags": want array, got object`},
		{name: "any takes no unrepresentable value", values: map[string]any{"message": "hi", "body": map[any]any{1: 2}},
			wantErr: `parameter "body": keys must be strings, got integer 1`},
		{name: "outside enum", values: map[string]any{"message": "hi", "method": "PUT"},
			wantErr: `parameter "method": "PUT" is not one of "GET", "POST"`},
		{name: "secret mismatch hides the value", values: map[string]any{"message": "hi", "token": 12345},
			wantErr: `parameter "token": want string, got integer`},
		{name: "secret outside enum hides the value", values: map[string]any{"message": "hi", "pin": 1},
			wantErr: `parameter "pin": not one of the allowed values`},
		{name: "first problem in name order", values: map[string]any{"count": "x", "aaa": 1},
			wantErr: `parameter "aaa": unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := schema.Apply(tt.values)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "12345", "secret values stay out of errors")
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestSchemaApplyDoesNotMutate(t *testing.T) {
	t.Parallel()
	schema := Schema{
		"count":   {Type: TypeInteger, Default: 1},
		"ratio":   {Type: TypeInteger},
		"headers": {Type: TypeObject, Default: map[string]any{"accept": "text/plain"}},
		"tags":    {Type: TypeArray},
	}
	values := map[string]any{"ratio": 2.0, "tags": []any{"a", map[string]any{"k": "v"}}}
	got, err := schema.Apply(values)
	require.NoError(t, err)

	// Changing the result must reach neither the input nor the schema's defaults.
	got["count"] = int64(9)
	got["tags"].([]any)[1].(map[string]any)["k"] = "changed"
	got["headers"].(map[string]any)["accept"] = "changed"
	require.Equal(t, map[string]any{"ratio": 2.0, "tags": []any{"a", map[string]any{"k": "v"}}}, values)
	require.Equal(t, map[string]any{"accept": "text/plain"}, schema["headers"].Default)
}

func TestSchemaApplyEmpty(t *testing.T) {
	t.Parallel()
	got, err := Schema(nil).Apply(nil)
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Empty(t, got)

	_, err = Schema(nil).Apply(map[string]any{"x": 1})
	require.EqualError(t, err, `parameter "x": unknown; none are accepted`)
}

func TestSchemaSecrets(t *testing.T) {
	t.Parallel()
	require.Nil(t, Schema{"a": {Type: TypeString}}.Secrets())
	require.Equal(t, []string{"api_key", "password"}, Schema{
		"password": {Type: TypeString, Secret: true},
		"user":     {Type: TypeString},
		"api_key":  {Type: TypeString, Secret: true},
	}.Secrets())
}

func TestSchemaJSON(t *testing.T) {
	t.Parallel()
	schema := Schema{
		"count":  {Type: TypeInteger, Description: "How many.", Required: true, Default: 3, Enum: []any{1, 2, 3}},
		"token":  {Type: TypeString, Secret: true},
		"force":  {Type: TypeBoolean, Default: false},
		"object": {Type: TypeObject, Default: map[string]any{"a": []any{1}}},
	}
	data, err := json.Marshal(schema)
	require.NoError(t, err)
	require.JSONEq(t, `{
		"count": {"type": "integer", "description": "How many.", "required": true, "default": 3, "enum": [1, 2, 3]},
		"token": {"type": "string", "secret": true},
		"force": {"type": "boolean", "default": false},
		"object": {"type": "object", "default": {"a": [1]}}
	}`, string(data))

	// Back from JSON numbers are float64; the schema still checks, and applies to the same
	// values (nested numbers inside objects keep their decoded type, so compare as JSON).
	var back Schema
	require.NoError(t, json.Unmarshal(data, &back))
	require.NoError(t, back.Check())
	want, err := schema.Apply(map[string]any{})
	require.NoError(t, err)
	got, err := back.Apply(map[string]any{})
	require.NoError(t, err)
	require.Equal(t, int64(3), got["count"])
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	gotJSON, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(wantJSON), string(gotJSON))

	data, err = json.Marshal(Schema(nil))
	require.NoError(t, err)
	require.Equal(t, "{}", string(data), "schemas go into jsonb columns that are never null")
}
