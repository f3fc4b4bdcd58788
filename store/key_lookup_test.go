package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// A lookup reads just the keys named, in their scopes: a pack's keys of the pack asked for, a
// user's of the user asked for (none without one); a secret key as its seal token; an expired
// or missing key not at all.
func TestKeyLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.NewStore(t)
	ann, err := st.IdentityInsert(ctx, "ann", "x", "operator")
	require.NoError(t, err)
	bob, err := st.IdentityInsert(ctx, "bob", "x", "operator")
	require.NoError(t, err)
	_, err = st.Pool().Exec(ctx, `INSERT INTO attune.key (scope, owner, name, secret, value, sealed, expires) VALUES
		('system', NULL, 'url', false, '"https://x"', NULL, NULL),
		('system', NULL, 'token', true, NULL, 'attune:sealed:v1:k000000000000:AAAA', NULL),
		('system', NULL, 'old', false, '1', NULL, now() - interval '1 second'),
		('pack.ops', NULL, 'limit', false, '5', NULL, now() + interval '1 hour'),
		('pack.other', NULL, 'limit', false, '9', NULL, NULL),
		('user', $1, 'me', false, '"ann"', NULL, NULL),
		('user', $2, 'me', false, '"bob"', NULL, NULL)`, ann.ID, bob.ID)
	require.NoError(t, err)

	names := []store.KeyName{kn("system", "url"), kn("system", "token"), kn("system", "old"), kn("system", "none"), kn("pack", "limit"), kn("user", "me")}
	found, err := st.KeyLookup(ctx, "ops", &ann.ID, names)
	require.NoError(t, err)
	require.Len(t, found, 4, "%v", found)
	require.JSONEq(t, `"https://x"`, string(found[kn("system", "url")].Value))
	require.Equal(t, store.KeyFound{Value: json.RawMessage(`"attune:sealed:v1:k000000000000:AAAA"`), Secret: true}, found[kn("system", "token")])
	require.JSONEq(t, `5`, string(found[kn("pack", "limit")].Value))
	require.JSONEq(t, `"ann"`, string(found[kn("user", "me")].Value))

	found, err = st.KeyLookup(ctx, "other", nil, names)
	require.NoError(t, err)
	require.JSONEq(t, `9`, string(found[kn("pack", "limit")].Value))
	_, ok := found[kn("user", "me")]
	require.False(t, ok, "no user, no user keys")

	found, err = st.KeyLookup(ctx, "ops", nil, nil)
	require.NoError(t, err)
	require.Empty(t, found)
}

func kn(scope, name string) store.KeyName { return store.KeyName{Scope: scope, Name: name} }
