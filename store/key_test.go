package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

func keyRef(scope, name string) store.KeyRef { return store.KeyRef{Scope: scope, Name: name} }

// A key is set, replaced, read and deleted under its scope; a user key belongs to its owner
// alone, and names are unique per scope and owner.
func TestKeySetGetDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	ada, err := s.IdentityInsert(ctx, "ada", "x", "viewer")
	require.NoError(t, err)
	bob, err := s.IdentityInsert(ctx, "bob", "x", "viewer")
	require.NoError(t, err)

	k, created, err := s.KeySet(ctx, store.KeySetParams{KeyRef: keyRef("system", "limit"), Value: json.RawMessage(`{"n": 3}`)})
	require.NoError(t, err)
	require.True(t, created)
	require.JSONEq(t, `{"n": 3}`, string(k.Value))
	k, created, err = s.KeySet(ctx, store.KeySetParams{KeyRef: keyRef("system", "limit"), Value: json.RawMessage(`4`)})
	require.NoError(t, err)
	require.False(t, created, "a second set replaces")
	require.JSONEq(t, `4`, string(k.Value))

	_, _, err = s.KeySet(ctx, store.KeySetParams{KeyRef: keyRef("pack.demo", "limit"), Value: json.RawMessage(`5`)})
	require.NoError(t, err)
	_, _, err = s.KeySet(ctx, store.KeySetParams{KeyRef: store.KeyRef{Scope: "user", Owner: ada.ID, Name: "limit"}, Value: json.RawMessage(`"ada's"`)})
	require.NoError(t, err)
	_, _, err = s.KeySet(ctx, store.KeySetParams{KeyRef: store.KeyRef{Scope: "user", Owner: bob.ID, Name: "limit"},
		Secret: true, Sealed: "attune:sealed:v1:k000000000000:AAAA"})
	require.NoError(t, err)

	got, err := s.KeyGet(ctx, store.KeyRef{Scope: "user", Owner: ada.ID, Name: "limit"})
	require.NoError(t, err)
	require.JSONEq(t, `"ada's"`, string(got.Value))
	secret, err := s.KeyGet(ctx, store.KeyRef{Scope: "user", Owner: bob.ID, Name: "limit"})
	require.NoError(t, err)
	require.True(t, secret.Secret)
	require.Nil(t, secret.Value)
	require.Equal(t, "attune:sealed:v1:k000000000000:AAAA", secret.Sealed)

	// Turning a secret key plain drops the sealed value, and back.
	_, _, err = s.KeySet(ctx, store.KeySetParams{KeyRef: store.KeyRef{Scope: "user", Owner: bob.ID, Name: "limit"}, Value: json.RawMessage(`1`)})
	require.NoError(t, err)
	plain, err := s.KeyGet(ctx, store.KeyRef{Scope: "user", Owner: bob.ID, Name: "limit"})
	require.NoError(t, err)
	require.False(t, plain.Secret)
	require.Empty(t, plain.Sealed)

	_, _, err = s.KeySet(ctx, store.KeySetParams{KeyRef: keyRef("system", "bad name"), Value: json.RawMessage(`1`)})
	require.ErrorIs(t, err, store.ErrConflict, "the table's checks hold the name")
	_, _, err = s.KeySet(ctx, store.KeySetParams{KeyRef: keyRef("user", "orphan"), Value: json.RawMessage(`1`)})
	require.ErrorIs(t, err, store.ErrConflict, "a user key has an owner")

	require.NoError(t, s.KeyDelete(ctx, keyRef("system", "limit")))
	_, err = s.KeyGet(ctx, keyRef("system", "limit"))
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.KeyDelete(ctx, keyRef("system", "limit")), store.ErrNotFound)
	_, err = s.KeyGet(ctx, keyRef("pack.demo", "limit"))
	require.NoError(t, err, "the same name in another scope is another key")
}

// A list keeps to the scopes asked for, to the caller's own user keys, and to the prefix
// (its % and _ taken literally), in scope and name order, paged.
func TestKeyList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	ada, err := s.IdentityInsert(ctx, "ada", "x", "viewer")
	require.NoError(t, err)
	bob, err := s.IdentityInsert(ctx, "bob", "x", "viewer")
	require.NoError(t, err)
	for _, r := range []store.KeyRef{
		keyRef("system", "db_host"), keyRef("system", "db_port"), keyRef("system", "dbxport"), keyRef("system", "web"),
		keyRef("pack.demo", "db_host"), keyRef("pack.other", "x"),
		{Scope: "user", Owner: ada.ID, Name: "db_mine"}, {Scope: "user", Owner: bob.ID, Name: "db_his"},
	} {
		_, _, err := s.KeySet(ctx, store.KeySetParams{KeyRef: r, Value: json.RawMessage(`1`)})
		require.NoError(t, err)
	}
	names := func(f store.KeyFilter, page store.Page) ([]string, int) {
		t.Helper()
		keys, total, err := s.KeyList(ctx, f, page)
		require.NoError(t, err)
		var out []string
		for _, k := range keys {
			out = append(out, k.Scope+"/"+k.Name)
		}
		return out, total
	}
	all := store.Page{Limit: 100}
	got, total := names(store.KeyFilter{Owner: ada.ID}, all)
	require.Equal(t, []string{"pack.demo/db_host", "pack.other/x", "system/db_host", "system/db_port", "system/dbxport", "system/web", "user/db_mine"}, got)
	require.Equal(t, 7, total)
	got, _ = names(store.KeyFilter{Owner: ada.ID, Scopes: []string{"user"}}, all)
	require.Equal(t, []string{"user/db_mine"}, got, "never another identity's")
	got, _ = names(store.KeyFilter{Scopes: []string{"user"}}, all)
	require.Empty(t, got, "no owner, no user keys")
	got, _ = names(store.KeyFilter{Scopes: []string{"system"}, Prefix: "db_"}, all)
	require.Equal(t, []string{"system/db_host", "system/db_port"}, got, "_ is no wildcard")
	got, _ = names(store.KeyFilter{Scopes: []string{"system", "pack.demo"}, Prefix: "db"}, all)
	require.Equal(t, []string{"pack.demo/db_host", "system/db_host", "system/db_port", "system/dbxport"}, got)
	got, total = names(store.KeyFilter{Scopes: []string{"system"}}, store.Page{Limit: 2, Offset: 2})
	require.Equal(t, []string{"system/dbxport", "system/web"}, got)
	require.Equal(t, 4, total)
}

// An expired key is gone for every read at once; a set over it creates it anew; the sweep
// deletes expired keys in batches of the size asked for and leaves the others.
func TestKeyExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	for i, ttl := range []time.Duration{-time.Minute, -time.Minute, -time.Minute, -time.Minute, time.Hour, 0} {
		_, _, err := s.KeySet(ctx, store.KeySetParams{KeyRef: keyRef("system", "k"+strings.Repeat("x", i)), Value: json.RawMessage(`1`), TTL: ttl})
		require.NoError(t, err)
	}
	_, err := s.KeyGet(ctx, keyRef("system", "k"))
	require.ErrorIs(t, err, store.ErrNotFound)
	keys, total, err := s.KeyList(ctx, store.KeyFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 2, total)
	require.Len(t, keys, 2)
	require.ErrorIs(t, s.KeyDelete(ctx, keyRef("system", "kx")), store.ErrNotFound, "an expired key cannot be deleted either")

	k, created, err := s.KeySet(ctx, store.KeySetParams{KeyRef: keyRef("system", "k"), Value: json.RawMessage(`2`)})
	require.NoError(t, err)
	require.True(t, created, "setting an expired key creates it")
	require.Nil(t, k.Expires)

	n, err := s.KeyDeleteExpired(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = s.KeyDeleteExpired(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n, "kxx and kxxx were left (the delete took kx); one went in the first batch")
	n, err = s.KeyDeleteExpired(ctx, 10)
	require.NoError(t, err)
	require.Zero(t, n)
	_, total, err = s.KeyList(ctx, store.KeyFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 3, total)

	// A short TTL: the key is there, then it is not, without anyone deleting it.
	// Long enough to read it back on a loaded machine, short enough to watch it go.
	_, _, err = s.KeySet(ctx, store.KeySetParams{KeyRef: keyRef("system", "brief"), Value: json.RawMessage(`1`), TTL: 3 * time.Second})
	require.NoError(t, err)
	_, err = s.KeyGet(ctx, keyRef("system", "brief"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := s.KeyGet(ctx, keyRef("system", "brief"))
		return err != nil
	}, 20*time.Second, 20*time.Millisecond)
	_, err = s.KeyGet(ctx, keyRef("system", "brief"))
	require.ErrorIs(t, err, store.ErrNotFound)
}

// An execution token stands for its execution while that runs and until it expires; only its
// hash is kept.
func TestExecutionToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	exec, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run"})
	require.NoError(t, err)
	token, err := s.ExecutionTokenIssue(ctx, exec.ID, time.Hour)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(token, store.ExecutionTokenPrefix))
	sum := sha256.Sum256([]byte(token))
	var off float64
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT extract(epoch FROM expires - (now() + interval '1 hour'))
		FROM attune.execution_token WHERE hash = $1`, sum[:]).Scan(&off))
	require.InDelta(t, 0, off, 5, "the TTL counts on PostgreSQL's clock")

	_, err = s.ExecutionTokenHolderBySum(ctx, sum[:])
	require.ErrorIs(t, err, store.ErrNotFound, "not running yet")
	_, _, err = s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"requested"}, To: "running"})
	require.NoError(t, err)
	h, err := s.ExecutionTokenHolderBySum(ctx, sum[:])
	require.NoError(t, err)
	require.Equal(t, store.ExecutionTokenHolder{Execution: exec.ID, ActionRef: "demo.run", PackRef: "demo"}, h)

	var stored int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM attune.execution_token WHERE position($1::bytea in hash) > 0`, []byte(token)).Scan(&stored))
	require.Zero(t, stored)

	other := sha256.Sum256([]byte(token + "x"))
	_, err = s.ExecutionTokenHolderBySum(ctx, other[:])
	require.ErrorIs(t, err, store.ErrNotFound)

	expired, err := s.ExecutionTokenIssue(ctx, exec.ID, -time.Second)
	require.NoError(t, err)
	expiredSum := sha256.Sum256([]byte(expired))
	_, err = s.ExecutionTokenHolderBySum(ctx, expiredSum[:])
	require.ErrorIs(t, err, store.ErrNotFound, "expired")
	n, err := s.ExecutionTokenDeleteExpired(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	_, _, err = s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"running"}, To: "completed"})
	require.NoError(t, err)
	_, err = s.ExecutionTokenHolderBySum(ctx, sum[:])
	require.ErrorIs(t, err, store.ErrNotFound, "the execution ended")
}
