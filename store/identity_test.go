package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// Two admins removed at once, each by another request: one goes, the other is refused as the
// last admin, however the two interleave. Without the lock on the admins both saw the other
// still there, and the installation was left with none.
func TestLastAdminHoldsUnderRace(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	ctx := context.Background()
	for round := range 20 {
		a, b := fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)
		for _, login := range []string{a, b} {
			_, err := st.IdentityInsert(ctx, login, "hash", "admin")
			require.NoError(t, err)
		}
		// Demotion and deletion race alike.
		ops := []func(login string) error{
			func(login string) error { return st.IdentityDelete(ctx, login) },
			func(login string) error { _, err := st.IdentityUpdate(ctx, login, "", "viewer"); return err },
		}
		op := ops[round%2]
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, login := range []string{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = op(login)
			}()
		}
		close(start)
		wg.Wait()
		var refused int
		for _, err := range errs {
			if err != nil {
				require.ErrorIs(t, err, store.ErrConflict, "round %d", round)
				refused++
			}
		}
		require.Equal(t, 1, refused, "round %d: exactly one of the two admins stays", round)
		var admins int
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM attune.identity WHERE role = 'admin'`).Scan(&admins))
		require.Equal(t, 1, admins, "round %d", round)
		// The survivor is the last admin until the next round adds two more.
		_, err := st.Pool().Exec(ctx, `DELETE FROM attune.identity`)
		require.NoError(t, err)
	}
}
