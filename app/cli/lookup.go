package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"
)

// lookupTimeout bounds the API calls made only to help a person type (--help, completion):
// a shell waits on them, so an API that does not answer soon counts as none.
const lookupTimeout = 2 * time.Second

// lookupClient is api's client for those calls, with the same URL and token as the command
// would use; nil when the flags, environment or config file do not make one.
func (a *apiFlags) lookupClient() *apiClient {
	client, err := a.client()
	if err != nil {
		return nil
	}
	client.http.Timeout = lookupTimeout
	return client
}

// commandContext is cmd's context; cobra leaves it unset on a command it has not run.
func commandContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
