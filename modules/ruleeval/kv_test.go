package ruleeval

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// The keys a rule's templates read are found when they compile, each once, whatever the
// expression around them; a template without kv reads none.
func TestKeyRefsFoundWhenCompiling(t *testing.T) {
	t.Parallel()
	params := map[string]any{
		"url":    "{{ kv.system.api_url }}/v1",
		"auth":   "Bearer {{ kv.pack.token }}",
		"n":      "{{ kv.system.limit * 2 + event.payload.count }}",
		"list":   []any{"{{ kv.system.api_url }}", map[string]any{"deep": "{{ kv.pack['other-key'] }}"}},
		"plain":  "{{ event.payload.host }}",
		"static": 3,
	}
	refs, err := ParamKeyRefs(params)
	require.NoError(t, err)
	require.ElementsMatch(t, []KeyRef{{ScopeSystem, "api_url"}, {ScopePack, "token"}, {ScopeSystem, "limit"}, {ScopePack, "other-key"}}, refs)

	refs, err = ParamKeyRefs(map[string]any{"p": "{{ event.payload.kv }}", "q": "kv.system.x without braces"})
	require.NoError(t, err)
	require.Empty(t, refs)
}

// kv read otherwise than by written names, an unknown scope, and a rule's kv.user are refused
// when the rule is checked, naming the place.
func TestKeyRefsRefused(t *testing.T) {
	t.Parallel()
	for tmpl, want := range map[string]string{
		"{{ kv.system[event.payload.name] }}": "read keys as kv.<scope>.<name>",
		"{{ kv }}":                            "read keys as kv.<scope>.<name>",
		"{{ kv.sytem.x }}":                    "kv.sytem: unknown scope",
		"{{ kv.user.token }}":                 "kv.user.token: a rule runs for no user",
	} {
		err := ValidateTemplates(map[string]any{"p": tmpl})
		require.ErrorContains(t, err, want, tmpl)
		require.ErrorContains(t, err, "action_params", tmpl)
	}
	_, err := ParseConditions([]any{map[string]any{"expression": "kv.user.limit > 3"}})
	require.ErrorContains(t, err, "conditions[0]: kv.user.limit: a rule runs for no user")
}

// kv renders as the keys found: a value keeps its type in a whole template and reads as text
// inside one; a secret key is its seal token, as it was stored, placed in the text around it;
// a key not found reads as nil, as any missing path.
func TestRenderKV(t *testing.T) {
	t.Parallel()
	const token = "attune:sealed:v1:k0123456789ab:c2VhbGVk~"
	kv, err := KV(map[KeyRef]Key{
		{ScopeSystem, "api_url"}: {Value: json.RawMessage(`"https://api.example"`)},
		{ScopeSystem, "limit"}:   {Value: json.RawMessage(`5`)},
		{ScopePack, "token"}:     {Value: json.RawMessage(`"` + token + `"`), Secret: true},
	})
	require.NoError(t, err)
	in := testInput()
	in.KV = kv
	out, err := Render(map[string]any{
		"url":     "{{ kv.system.api_url }}/v1",
		"limit":   "{{ kv.system.limit }}",
		"auth":    "Bearer {{ kv.pack.token }}",
		"missing": "{{ kv.system.nope }}",
		"text":    "[{{ kv.pack.nope }}]",
	}, in)
	require.NoError(t, err)
	require.Equal(t, "https://api.example/v1", out["url"])
	require.EqualValues(t, 5, out["limit"])
	require.Equal(t, "Bearer "+token, out["auth"])
	require.Nil(t, out["missing"])
	require.Equal(t, "[]", out["text"])

	cond, err := ParseConditions([]any{map[string]any{"expression": "event.payload.count > kv.system.limit"}})
	require.NoError(t, err)
	require.Equal(t, []KeyRef{{ScopeSystem, "limit"}}, cond.KeyRefs())
	ok, err := cond.Match(in)
	require.NoError(t, err)
	require.False(t, ok, "4 is not above 5")

	found := map[KeyRef]Key{{ScopePack, "token"}: {Secret: true}}
	require.ErrorContains(t, RefuseSecretKeys([]KeyRef{{ScopePack, "token"}}, found, "conditions"), "conditions read kv.pack.token, a secret key")
	require.NoError(t, RefuseSecretKeys([]KeyRef{{ScopeSystem, "limit"}}, found, "conditions"))
}
