package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// flakyTokens issues tokens after failing the first fails tries with err.
type flakyTokens struct {
	Store
	fails int
	err   error
	tries int
}

func (f *flakyTokens) ExecutionTokenIssue(_ context.Context, _ int64, _ time.Duration) (string, error) {
	f.tries++
	if f.tries <= f.fails {
		return "", f.err
	}
	return "tok", nil
}

// A claimed execution cannot be handed back (its status does not move back), so the
// action's token is tried again while the database is away, a few times, and an error of
// another kind is not tried again.
func TestIssueTokenRetriesWhileTheDatabaseIsAway(t *testing.T) {
	t.Parallel()
	away := fmt.Errorf("issue token: %w", store.ErrUnavailable)
	for _, c := range []struct {
		name      string
		fails     int
		err       error
		wantTries int
		wantErr   error
	}{
		{"a blip", 2, away, 3, nil},
		{"away for longer", 100, away, startAttempts, store.ErrUnavailable},
		{"another error", 100, errors.New("refused"), 1, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := &flakyTokens{fails: c.fails, err: c.err}
			m := &Module{deps: Deps{Store: f, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
			tok, err := m.issueToken(context.Background(), 7, time.Minute)
			require.Equal(t, c.wantTries, f.tries)
			switch {
			case c.fails < c.wantTries:
				require.NoError(t, err)
				require.Equal(t, "tok", tok)
			case c.wantErr != nil:
				require.ErrorIs(t, err, c.wantErr)
			default:
				require.EqualError(t, err, "refused")
			}
		})
	}
}
