package storetest

import (
	"context"
	"log/slog"

	"github.com/attune-go/attune/store"
)

// Deaf is a store whose change listeners connect and then never hear a change, as when a
// NOTIFY is slow to arrive: caches stay trusted, and only what else a module does to notice
// a change (store.ComponentWatch) can tell it that they are behind.
type Deaf struct{ *store.Store }

// Listen reports itself listening and waits for ctx to end.
func (Deaf) Listen(ctx context.Context, _ string, _ *slog.Logger, onChange func(bool)) error {
	onChange(true)
	<-ctx.Done()
	return nil
}
