package seal

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// Secret parameters sealed from equal values are equal tokens under one key (a policy groups
// executions by them), different for different values or another key, and open as any token.
func TestSealParamsIsDeterministicPerKey(t *testing.T) {
	r, _ := newRing(t)
	other, _ := newRing(t)
	params := json.RawMessage(`{"env": "production-eu", "n": 7}`)
	a, err := r.SealParams(params, []string{"env", "n"})
	require.NoError(t, err)
	b, err := r.SealParams(params, []string{"env", "n"})
	require.NoError(t, err)
	require.JSONEq(t, string(a), string(b), "equal values, equal tokens")
	c, err := r.SealParams(json.RawMessage(`{"env": "production-us", "n": 7}`), []string{"env", "n"})
	require.NoError(t, err)
	require.NotEqual(t, Names(a), nil)
	var av, cv map[string]string
	require.NoError(t, json.Unmarshal(a, &av))
	require.NoError(t, json.Unmarshal(c, &cv))
	require.NotEqual(t, av["env"], cv["env"])
	require.Equal(t, av["n"], cv["n"])
	d, err := other.SealParams(params, []string{"env"})
	require.NoError(t, err)
	require.NotContains(t, string(d), av["env"], "another key, another token")

	opened, texts, err := r.OpenJSON(a)
	require.NoError(t, err)
	require.JSONEq(t, string(params), string(opened))
	require.ElementsMatch(t, []string{"production-eu", "7"}, texts)
}
