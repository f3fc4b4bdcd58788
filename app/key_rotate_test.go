package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/seal"
	"github.com/attune-go/attune/store/storetest"
)

// newTestKey is a random encryption key and the keyring that holds it alone.
func newTestKey(t *testing.T) (seal.Key, *seal.Keyring) {
	t.Helper()
	k, err := seal.NewKey()
	require.NoError(t, err)
	r, err := seal.NewKeyring(k)
	require.NoError(t, err)
	return k, r
}

// fillSealed gives every column that may hold tokens (store.SealedColumns) a row with values
// sealed by ring: a datastore key, and JSON holding a token whole and one inside a string.
func fillSealed(t *testing.T, st *store.Store, ring *seal.Keyring) {
	t.Helper()
	ctx := context.Background()
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "vault"},
		Triggers: []store.Trigger{{Ref: "vault.hook", Enabled: true}},
		Actions: []store.Action{{Ref: "vault.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true},
			storetest.WorkflowAction("vault.flow", "")},
		Rules: []store.Rule{{Ref: "vault.rule", TriggerRef: "vault.hook", ActionRef: "vault.run", Enabled: true}},
	})
	require.NoError(t, err)
	ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: "vault.hook"})
	require.NoError(t, err)
	_, err = st.EventEnforce(ctx, ev.ID, []store.EnforcementMatch{{RuleRef: "vault.rule"}})
	require.NoError(t, err)
	storetest.FillWorkflow(t, st, storetest.Workflow{ActionRef: "vault.flow", Tasks: []storetest.WorkflowTask{
		{Name: "each", Items: []any{1}, Children: []storetest.WorkflowChild{{ActionRef: "vault.run", Status: "completed"}}}}})

	sealed := func(v string) string {
		tok, err := ring.SealValue(json.RawMessage(v))
		require.NoError(t, err)
		return tok
	}
	for i := range 3 {
		_, _, err = st.KeySet(ctx, store.KeySetParams{KeyRef: store.KeyRef{Scope: "system", Name: fmt.Sprintf("secret%d", i)},
			Secret: true, Sealed: sealed(`"value"`)})
		require.NoError(t, err)
	}
	_, err = st.Pool().Exec(ctx, `INSERT INTO attune.admission_group (action_ref, group_key) VALUES ('vault.run', '[]')`)
	require.NoError(t, err)
	for _, c := range store.SealedColumns[1:] {
		doc := fmt.Sprintf(`{"token": %q, "header": "Bearer %s", "plain": 1}`, sealed(`"t"`), sealed(`"h"`))
		cast := "::jsonb"
		if !c.JSON {
			cast = ""
		}
		tag, err := st.Pool().Exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = $1%s`, c.Table, c.Column, cast), doc)
		require.NoError(t, err)
		require.NotZero(t, tag.RowsAffected(), "no row of %s to hold a token", c.Table)
	}
}

// sealedUnder returns the ids of the keys that sealed the tokens of each column.
func sealedUnder(t *testing.T, st *store.Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, c := range store.SealedColumns {
		ids, err := st.SealedKeyIDs(context.Background(), c)
		require.NoError(t, err)
		out[c.String()] = ids
	}
	return out
}

// everyColumn maps each sealed column to want.
func everyColumn(want ...string) map[string][]string {
	out := map[string][]string{}
	for _, c := range store.SealedColumns {
		out[c.String()] = want
	}
	return out
}

// openAll opens every token of every sealed column with ring.
func openAll(t *testing.T, pool *pgxpool.Pool, ring *seal.Keyring) error {
	t.Helper()
	for _, c := range store.SealedColumns {
		rows, err := pool.Query(context.Background(), fmt.Sprintf(`SELECT %s::text FROM %s WHERE %[1]s IS NOT NULL`, c.Column, c.Table))
		require.NoError(t, err)
		for rows.Next() {
			var text string
			require.NoError(t, rows.Scan(&text))
			if c.JSON {
				if _, _, err := ring.OpenJSON(json.RawMessage(text)); err != nil {
					rows.Close()
					return fmt.Errorf("%s: %w", c, err)
				}
			} else if seal.IsToken(text) {
				if _, err := ring.Open(text); err != nil {
					rows.Close()
					return fmt.Errorf("%s: %w", c, err)
				}
			}
		}
		require.NoError(t, rows.Err())
	}
	return nil
}

// Values sealed under key A are re-sealed under B by "attune key rotate" with B current and A
// older, in every column that holds them; then B alone opens everything, and a process with
// neither gets an error naming B. Without A the rotation refuses and changes nothing; run
// again it changes nothing either; serve refuses to start on secret keys it cannot open.
func TestKeyRotate(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.NewStore(pool)
	a, ringA := newTestKey(t)
	b, ringB := newTestKey(t)
	fillSealed(t, st, ringA)
	var n int
	// One value was rotated already, by a run that stopped half way.
	_, _, err = st.KeySet(ctx, store.KeySetParams{KeyRef: store.KeyRef{Scope: "system", Name: "done"}, Secret: true,
		Sealed: func() string { tok, err := ringB.SealValue(json.RawMessage(`1`)); require.NoError(t, err); return tok }()})
	require.NoError(t, err)
	before := sealedUnder(t, st)
	for _, c := range store.SealedColumns[1:] {
		require.Equal(t, []string{a.ID()}, before[c.String()], c.String())
	}
	require.ElementsMatch(t, []string{a.ID(), b.ID()}, before[store.KeySealedColumn.String()])
	// What the rotation has to do: every row holding a token, but the key already done.
	toDo := map[string]int{}
	for _, c := range store.SealedColumns {
		require.NoError(t, pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s::text LIKE '%%%s%%'`, c.Table, c.Column, seal.Prefix)).Scan(&n))
		toDo[c.String()] = n
	}
	toDo[store.KeySealedColumn.String()]--

	db := "--database-url=" + dbURL
	_, stderr, code := runAttuneEnv(t, []string{"ATTUNE_ENCRYPTION_KEY=" + b.String()}, "key", "rotate", db)
	require.Equal(t, 1, code, stderr)
	line := requireOneErrorLine(t, stderr)
	require.Contains(t, line, "key id "+a.ID()+" (in attune.key.sealed, attune.execution.parameters")
	require.Contains(t, line, "nothing was changed")
	require.Equal(t, before, sealedUnder(t, st), "a refused rotation changes nothing")

	_, stderr, code = runAttuneEnv(t, []string{"ATTUNE_ENCRYPTION_KEY=not-a-key"}, "key", "rotate", db)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, requireOneErrorLine(t, stderr), "ATTUNE_ENCRYPTION_KEY, key 1: encryption key must be 32 random bytes")

	env := []string{"ATTUNE_ENCRYPTION_KEY=" + b.String(), "ATTUNE_ENCRYPTION_OLD_KEYS=" + a.String()}
	stdout, stderr, code := runAttuneEnv(t, env, "key", "rotate", db)
	require.Equal(t, 0, code, stderr)
	var want strings.Builder
	total := 0
	for _, c := range store.SealedColumns {
		fmt.Fprintf(&want, "%s: %d re-encrypted\n", c, toDo[c.String()])
		total += toDo[c.String()]
	}
	fmt.Fprintf(&want, "every secret value is under key %s (%d re-encrypted)\n", b.ID(), total)
	require.Equal(t, want.String(), stdout)
	require.Equal(t, everyColumn(b.ID()), sealedUnder(t, st))
	var audit string
	require.NoError(t, pool.QueryRow(ctx, `SELECT string_agg(actor || ' ' || kind || ' ' || object || ' ' || detail::text, ';')
		FROM attune.audit WHERE kind = 'key.rotate'`).Scan(&audit))
	require.Equal(t, fmt.Sprintf(`cli key.rotate %s {"reencrypted": %d}`, b.ID(), total), audit,
		"the refused rotation is not recorded, the one that ran is, by the cli")
	require.NoError(t, openAll(t, pool, ringB), "B alone opens everything")
	// What secret parameters and group keys hold is sealed again as SealParams seals under B,
	// so that equal values stay equal (a policy's groups compare them); a secret key's value
	// is sealed with a random nonce, as a key is set.
	synthetic := `"token": "` + ringB.SealSynthetic([]byte(`"t"`)) + `"`
	for _, c := range store.SealedColumns[1:] {
		var text string
		require.NoError(t, pool.QueryRow(ctx, fmt.Sprintf(`SELECT %s::text FROM %s LIMIT 1`, c.Column, c.Table)).Scan(&text))
		require.Contains(t, text, synthetic, c.String())
	}
	var keyTokens int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(DISTINCT sealed) FROM attune.key WHERE name LIKE 'secret%'`).Scan(&keyTokens))
	require.Equal(t, 3, keyTokens, "three keys of one value, three tokens")
	c, ringC := newTestKey(t)
	err = openAll(t, pool, ringC)
	require.ErrorIs(t, err, seal.ErrUnknownKey)
	require.Contains(t, err.Error(), b.ID())

	stdout, stderr, code = runAttuneEnv(t, env, "key", "rotate", db)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "(0 re-encrypted)", "a second run has nothing to do")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM attune.audit WHERE kind = 'key.rotate'`).Scan(&n))
	require.Equal(t, 1, n, "a run that changed nothing records nothing")

	// A process with the wrong key does not start, and says which key it lacks.
	_, stderr, code = runAttuneEnv(t, []string{"ATTUNE_ENCRYPTION_KEY=" + c.String()}, "serve", "--log-level=error", "--http-addr=127.0.0.1:0", db)
	require.Equal(t, 1, code, stderr)
	line = requireOneErrorLine(t, stderr)
	require.Contains(t, line, "key id "+b.ID()+" (in attune.key.sealed)")
	require.Contains(t, line, "refusing to start")
}
