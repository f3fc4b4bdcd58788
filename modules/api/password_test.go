package api

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Password checks queue in a few slots, so that a flood of logins cannot hold Argon2id's
// memory many times over: with every slot taken, a check waits its turn, then is refused as
// the server being busy, and a slot given back lets the next one through.
func TestPasswordChecksQueueInSlots(t *testing.T) {
	t.Parallel()
	_, m := router(t)
	m.passwordWait = 50 * time.Millisecond
	hash, err := hashPassword("the-right-password")
	require.NoError(t, err)
	for range cap(m.passwordSlots) {
		m.passwordSlots <- struct{}{}
	}
	_, err = m.checkLoginPassword(context.Background(), hash, "the-right-password")
	var apiErr *Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	require.Equal(t, http.StatusServiceUnavailable, apiErr.Status)

	<-m.passwordSlots
	ok, err := m.checkLoginPassword(context.Background(), hash, "the-right-password")
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, m.passwordSlots, cap(m.passwordSlots)-1, "the check gave its slot back")
}
