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
