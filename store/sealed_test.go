package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/seal"
	"github.com/attune-go/attune/store/storetest"
)

// ResealBatch walks a column in key order, a batch at a time, rewriting the rows whose text
// holds a token and skipping the others; an error rolls its batch back whole, leaving the
// batches before it done.
func TestResealBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	ring := func() *seal.Keyring {
		k, err := seal.NewKey()
		require.NoError(t, err)
		r, err := seal.NewKeyring(k)
		require.NoError(t, err)
		return r
	}
	old := ring()
	for i := range 5 {
		p := store.KeySetParams{KeyRef: store.KeyRef{Scope: "system", Name: fmt.Sprintf("k%d", i)}, Value: json.RawMessage(`1`)}
		if i != 2 {
			tok, err := old.SealValue(json.RawMessage(`"v"`))
			require.NoError(t, err)
			p = store.KeySetParams{KeyRef: p.KeyRef, Secret: true, Sealed: tok}
		}
		_, _, err := s.KeySet(ctx, p)
		require.NoError(t, err)
	}

	var after []int64
	var batches, changed int
	rewritten := 0
	for {
		last, n, err := s.ResealBatch(ctx, store.KeySealedColumn, after, 1, func(text string) (string, bool, error) {
			rewritten++
			if rewritten == 3 {
				return "", false, errors.New("refused")
			}
			return "attune:sealed:v1:k000000000000:" + fmt.Sprint(rewritten), true, nil
		})
		if err != nil {
			require.ErrorContains(t, err, "refused")
			break
		}
		batches++
		changed += n
		require.NotNil(t, last)
		after = last
	}
	require.Equal(t, 2, batches)
	require.Equal(t, 2, changed)
	var sealed []string
	rows, err := s.Pool().Query(ctx, `SELECT coalesce(sealed, '') FROM attune.key ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var v string
		require.NoError(t, rows.Scan(&v))
		sealed = append(sealed, v)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, "attune:sealed:v1:k000000000000:1", sealed[0])
	require.Equal(t, "attune:sealed:v1:k000000000000:2", sealed[1])
	require.Empty(t, sealed[2], "a key that is not secret is not read")
	require.Equal(t, old.CurrentID(), seal.KeyIDs(sealed[3])[0], "the refused batch is as it was")

	// Resumed after the third key, the walk ends at the column's end.
	last, n, err := s.ResealBatch(ctx, store.KeySealedColumn, after, 10, func(text string) (string, bool, error) { return text, false, nil })
	require.NoError(t, err)
	require.Nil(t, last, "done")
	require.Zero(t, n, "nothing changed, nothing written")

	ids, err := s.SealedKeyIDs(ctx, store.KeySealedColumn)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"k000000000000", old.CurrentID()}, ids)
}

// A queue's key re-sealed to the text of a queue made after the new key became current (the
// same values) is kept apart, so that the rotation goes on: the older queue drains under its
// id, the newer takes what comes. Keys of other actions do not count.
func TestResealBatchKeepsQueuesApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	_, err := s.PackRegister(ctx, store.PackRegistration{Pack: store.Pack{Ref: "q"}, Actions: []store.Action{
		{Ref: "q.a", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true},
		{Ref: "q.b", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}}})
	require.NoError(t, err)
	const oldKey, newKey = `["attune:sealed:v1:k000000000001:old~"]`, `["attune:sealed:v1:k000000000002:new~"]`
	var collides, alone int64
	require.NoError(t, s.Pool().QueryRow(ctx, `INSERT INTO attune.admission_group (action_ref, group_key) VALUES ('q.a', $1) RETURNING id`,
		oldKey).Scan(&collides))
	require.NoError(t, s.Pool().QueryRow(ctx, `INSERT INTO attune.admission_group (action_ref, group_key) VALUES ('q.b', $1) RETURNING id`,
		oldKey).Scan(&alone))
	_, err = s.Pool().Exec(ctx, `INSERT INTO attune.admission_group (action_ref, group_key) VALUES ('q.a', $1)`, newKey)
	require.NoError(t, err)

	var column store.SealedColumn
	for _, c := range store.SealedColumns {
		if c.Table == "attune.admission_group" {
			column = c
		}
	}
	require.Equal(t, "group_key", column.Column, "queues' keys are rotated")
	_, n, err := s.ResealBatch(ctx, column, nil, 10, func(text string) (string, bool, error) {
		return newKey, text == oldKey, nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	keyOf := func(id int64) string {
		var k string
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT group_key FROM attune.admission_group WHERE id = $1`, id).Scan(&k))
		return k
	}
	require.Equal(t, fmt.Sprintf("%s (before the key rotation: %d)", newKey, collides), keyOf(collides))
	require.Equal(t, newKey, keyOf(alone))
}
