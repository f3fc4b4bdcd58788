package seal

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newRing(t *testing.T, older ...Key) (*Keyring, Key) {
	t.Helper()
	k, err := NewKey()
	require.NoError(t, err)
	r, err := NewKeyring(k, older...)
	require.NoError(t, err)
	return r, k
}

func TestParseKeyForms(t *testing.T) {
	k, err := NewKey()
	require.NoError(t, err)
	raw := k.material
	for _, form := range []string{
		k.String(),
		strings.TrimRight(k.String(), "="),
		"  " + k.String() + "\n",
		strings.ToUpper(hexOf(raw)),
		hexOf(raw),
	} {
		got, err := ParseKey(form)
		require.NoError(t, err, form)
		assert.Equal(t, k.ID(), got.ID(), form)
	}
	for _, bad := range []string{"", "short", strings.Repeat("a", 63), k.String() + "AAAA"} {
		_, err := ParseKey(bad)
		assert.Error(t, err, bad)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestSealOpen(t *testing.T) {
	r, k := newRing(t)
	tok, err := r.Seal([]byte("hunter2"))
	require.NoError(t, err)
	assert.True(t, IsToken(tok))
	assert.NotContains(t, tok, "hunter2")
	assert.Equal(t, []string{k.ID()}, KeyIDs("x "+tok+" y "+tok))
	plain, err := r.Open(tok)
	require.NoError(t, err)
	assert.Equal(t, "hunter2", string(plain))

	again, err := r.Seal([]byte("hunter2"))
	require.NoError(t, err)
	assert.NotEqual(t, tok, again, "a nonce per seal")
}

func TestOpenRefusesWhatItCannotOpen(t *testing.T) {
	r, _ := newRing(t)
	other, otherKey := newRing(t)
	tok, err := other.Seal([]byte("v"))
	require.NoError(t, err)

	_, err = r.Open(tok)
	require.ErrorIs(t, err, ErrUnknownKey)
	assert.Contains(t, err.Error(), otherKey.ID(), "the error names the key the value needs")

	// Another key under the id a token names (a relabelled token): damaged, never garbage.
	relabelled := strings.Replace(tok, otherKey.ID(), r.CurrentID(), 1)
	_, err = r.Open(relabelled)
	require.ErrorIs(t, err, ErrDamaged)

	mine, err := r.Seal([]byte("v"))
	require.NoError(t, err)
	flipped := []byte(mine)
	last := len(flipped) - 6 // inside the payload, away from the last character's spare bits
	flipped[last] ^= 1
	if flipped[last] == '_' || flipped[last] == '-' { // keep it in the alphabet
		flipped[last] = 'A'
	}
	_, err = r.Open(string(flipped))
	assert.True(t, errors.Is(err, ErrDamaged) || errors.Is(err, ErrMalformed), "%v", err)

	_, err = r.Open("attune:sealed:v1:nope")
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestSealParamsAndOpenJSON(t *testing.T) {
	r, _ := newRing(t)
	params := json.RawMessage(`{"user":"ann","password":"pa\"ss","n":{"deep":[1,2]},"none":null}`)
	sealed, err := r.SealParams(params, []string{"password", "n", "none", "absent"})
	require.NoError(t, err)
	assert.NotContains(t, string(sealed), `pa\"ss`)
	assert.NotContains(t, string(sealed), "deep")
	assert.ElementsMatch(t, []string{"password", "n"}, Names(sealed))

	again, err := r.SealParams(sealed, []string{"password", "n"})
	require.NoError(t, err)
	assert.JSONEq(t, string(sealed), string(again), "a sealed value is not sealed twice")

	opened, texts, err := r.OpenJSON(sealed)
	require.NoError(t, err)
	assert.JSONEq(t, string(params), string(opened))
	assert.ElementsMatch(t, []string{`pa"ss`, `{"deep":[1,2]}`}, texts)
}

func TestOpenJSONInsideLongerStrings(t *testing.T) {
	r, _ := newRing(t)
	tok, err := r.SealValue(json.RawMessage(`"s3cret"`))
	require.NoError(t, err)
	num, err := r.SealValue(json.RawMessage(`12345678901234567890`))
	require.NoError(t, err)
	doc := json.RawMessage(`{"auth":"Bearer ` + tok + `","list":["` + num + `","id ` + num + `"],"next":"` + tok + `-v2_x` + tok + tok + `"}`)
	opened, texts, err := r.OpenJSON(doc)
	require.NoError(t, err)
	assert.JSONEq(t, `{"auth":"Bearer s3cret","list":[12345678901234567890,"id 12345678901234567890"],"next":"s3cret-v2_xs3crets3cret"}`, string(opened),
		"text of the token's own alphabet right after it, and tokens back to back, stay apart")
	assert.Contains(t, texts, "s3cret")
}

func TestResealMovesToTheCurrentKey(t *testing.T) {
	old, oldKey := newRing(t)
	tok, err := old.SealValue(json.RawMessage(`"v"`))
	require.NoError(t, err)
	doc := `{"a":"` + tok + `","b":"x ` + tok + `"}`

	r, _ := newRing(t, oldKey)
	out, changed, err := r.Reseal(doc)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Equal(t, []string{r.CurrentID()}, KeyIDs(out))
	opened, _, err := r.OpenJSON(json.RawMessage(out))
	require.NoError(t, err)
	assert.JSONEq(t, `{"a":"v","b":"x v"}`, string(opened))

	same, changed, err := r.Reseal(out)
	require.NoError(t, err)
	assert.False(t, changed)
	assert.Equal(t, out, same)

	newOnly, _ := newRing(t)
	_, _, err = newOnly.Reseal(doc)
	assert.ErrorIs(t, err, ErrUnknownKey, "a rotation without the old key refuses rather than loses values")
}

// Values SealParams sealed (equal values, equal tokens) are still equal after a rotation,
// and equal to what SealParams gives them under the new key; every token of them opens.
func TestResealSyntheticKeepsEqualValuesEqual(t *testing.T) {
	old, oldKey := newRing(t)
	params, err := old.SealParams(json.RawMessage(`{"a": "v", "b": "v", "c": "w"}`), []string{"a", "b", "c"})
	require.NoError(t, err)

	r, _ := newRing(t, oldKey)
	out, changed, err := r.ResealSynthetic(string(params))
	require.NoError(t, err)
	assert.True(t, changed)
	now, err := r.SealParams(json.RawMessage(`{"a": "v", "b": "v", "c": "w"}`), []string{"a", "b", "c"})
	require.NoError(t, err)
	assert.JSONEq(t, string(now), out, "as if sealed under the new key")
	opened, _, err := r.OpenJSON(json.RawMessage(out))
	require.NoError(t, err)
	assert.JSONEq(t, `{"a": "v", "b": "v", "c": "w"}`, string(opened))

	random, _, err := r.Reseal(string(params))
	require.NoError(t, err)
	assert.NotEqual(t, out, random, "Reseal draws its nonces")
}

func TestReplaceTokens(t *testing.T) {
	r, _ := newRing(t)
	tok, err := r.Seal([]byte(`"s3cret"`))
	require.NoError(t, err)
	require.Equal(t, "a [M] b [M]", ReplaceTokens("a "+tok+" b "+tok[:len(tok)-5], "[M]"), "a whole token and one cut short")
	require.Equal(t, "no token here", ReplaceTokens("no token here", "[M]"))
	require.Equal(t, "[M]-v2", ReplaceTokens(tok+"-v2", "[M]"), "text after a token's end stays")
}
