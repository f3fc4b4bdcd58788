package api

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// A queue's group key holds the grouping parameters' values as stored: a parameter a secret
// key was rendered into is not declared secret, yet holds a seal token, which is masked as
// every sealed string in an answer is.
func TestMaskGroupsSealedValues(t *testing.T) {
	t.Parallel()
	const token = "attune:sealed:v1:k0123456789ab:c2VhbGVk~"
	for name, schema := range map[string]string{
		"no secret parameter":        `{"host": {"type": "string"}, "region": {"type": "string"}}`,
		"another parameter's secret": `{"host": {"type": "string"}, "region": {"type": "string"}, "pw": {"type": "string", "secret": true}}`,
	} {
		st := store.QueueStats{Groups: []store.QueueGroup{
			{Key: `["Bearer ` + token + `", "eu"]`, Active: 1},
			{Key: `["plain", "eu"]`, Active: 1},
		}}
		got := maskGroups(st, []string{"host", "region"}, json.RawMessage(schema))
		require.JSONEq(t, `["`+pack.Mask+`", "eu"]`, got.Groups[0].Key, name)
		require.JSONEq(t, `["plain", "eu"]`, got.Groups[1].Key, name)
	}
}

// A reason recorded by a rule or a workflow may quote a seal token (a template's error about
// the value it computed with): answers show the reason with the token masked.
func TestReasonMasksSealTokens(t *testing.T) {
	t.Parallel()
	const token = "attune:sealed:v1:k0123456789ab:c2VhbGVk~"
	reason := `render vars: evaluate template "int(input.port)": invalid operation: int(` + token + `) (1:0)`
	want := `render vars: evaluate template "int(input.port)": invalid operation: int(` + pack.Mask + `) (1:0)`
	exec := masked(store.Execution{Reason: &reason})
	require.Equal(t, want, *exec.Reason)
	enf := masked(store.Enforcement{Reason: &reason})
	require.Equal(t, want, *enf.Reason)
	require.Contains(t, reason, token, "the row's reason is left as it is")
	require.Nil(t, masked(store.Execution{}).Reason)
}
