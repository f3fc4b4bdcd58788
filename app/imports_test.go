package app_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const modulePath = "github.com/attune-go/attune"

// The layering of ARCHITECTURE.md, held by the compiler's own view of the imports: modules
// never import each other or the composition root, and the adapters below them import none of
// the layers above.
func TestImportRules(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, modulePath+"/...").CombinedOutput()
	require.NoError(t, err, string(out))

	forbidden := map[string][]string{
		"/modules/":   {"/app", "/modules/", "/broker/amqpbroker", "/broker/membroker", "/migrations", "github.com/rabbitmq/amqp091-go", "github.com/pressly/goose"},
		"/store":      {"/app", "/modules/", "/broker", "/migrations"},
		"/broker":     {"/app", "/modules/", "/store", "/migrations"},
		"/migrations": {"/app", "/modules/", "/store", "/broker"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(fields[0], modulePath), fields[1:]
		if strings.HasSuffix(pkg, "test") {
			continue // test helpers may reach across layers
		}
		for prefix, banned := range forbidden {
			if !strings.HasPrefix(pkg, prefix) {
				continue
			}
			for _, imp := range imports {
				local := strings.TrimPrefix(imp, modulePath)
				for _, b := range banned {
					if strings.HasPrefix(local, b) && !(prefix == "/modules/" && b == "/modules/" && strings.HasPrefix(local, pkg)) {
						t.Errorf("%s imports %s", pkg, imp)
					}
				}
			}
		}
	}
}
