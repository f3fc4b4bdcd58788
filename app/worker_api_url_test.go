package app

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A worker gives its actions --worker-api-url, else its own process's API (on the loopback
// when the API listens on every address), else the default address.
func TestWorkerAPIURL(t *testing.T) {
	t.Parallel()
	withAPI := []Role{RoleWorker, RoleAPI}
	for _, c := range []struct {
		flag      string
		roles     []Role
		listening string
		want      string
	}{
		{"https://attune.example/", withAPI, "[::]:8080", "https://attune.example"},
		{"", withAPI, "[::]:8080", "http://localhost:8080"},
		{"", withAPI, "0.0.0.0:9000", "http://localhost:9000"},
		{"", withAPI, "127.0.0.1:43127", "http://127.0.0.1:43127"},
		{"", []Role{RoleWorker}, "127.0.0.1:43127", "http://localhost:8080"},
	} {
		got := workerAPIURL(serveConfig{workerAPIURL: c.flag, roles: c.roles}, c.listening)
		require.Equal(t, c.want, got, "%+v", c)
	}
}
