package app_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const modulePath = "github.com/attune-go/attune"

// roleModules run a role's work; they never import each other. libraries under modules/ hold
// domain logic several roles share (the pack format, rule evaluation, timer schedules, workflow
// definitions); they import no role.
var (
	roleModules = []string{"/modules/api", "/modules/executor", "/modules/retention", "/modules/rules", "/modules/sensor", "/modules/worker"}
	libraries   = []string{"/modules/pack", "/modules/ruleeval", "/modules/schedule", "/modules/workflow"}
)

// The layering of docs/architecture.md (Packages), held by the compiler's own view of the imports.
func TestImportRules(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, modulePath+"/...").CombinedOutput()
	require.NoError(t, err, string(out))

	adapters := []string{"/app", "/broker/amqpbroker", "/broker/membroker", "/migrations", "github.com/rabbitmq/amqp091-go", "github.com/pressly/goose"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(fields[0], modulePath), fields[1:]
		if strings.HasSuffix(pkg, "test") {
			continue // test helpers may reach across layers
		}
		var banned []string
		switch {
		case within(pkg, roleModules) != "":
			banned = append(adapters, except(roleModules, within(pkg, roleModules))...)
		case pkg == "/app/cli":
			// The command line is a client of the API: the roles, the broker and the
			// database's schema are the server's business.
			banned = append(append(adapters, roleModules...), "/broker")
		case within(pkg, libraries) != "":
			banned = append(adapters, roleModules...)
		case pkg == "/store" || strings.HasPrefix(pkg, "/store/"):
			banned = []string{"/app", "/modules", "/broker", "/migrations"}
		case pkg == "/broker" || strings.HasPrefix(pkg, "/broker/"):
			banned = []string{"/app", "/modules", "/store", "/migrations"}
		case pkg == "/migrations":
			banned = []string{"/app", "/modules", "/store", "/broker"}
		}
		for _, imp := range imports {
			local := strings.TrimPrefix(imp, modulePath)
			for _, b := range banned {
				if local == b || strings.HasPrefix(local, b+"/") || (!strings.HasPrefix(b, "/") && strings.HasPrefix(local, b)) {
					t.Errorf("%s imports %s", pkg, imp)
				}
			}
		}
	}
}

// within returns the entry of roots that pkg is or lies under, or "".
func within(pkg string, roots []string) string {
	for _, r := range roots {
		if pkg == r || strings.HasPrefix(pkg, r+"/") {
			return r
		}
	}
	return ""
}

func except(items []string, drop string) []string {
	var out []string
	for _, it := range items {
		if it != drop {
			out = append(out, it)
		}
	}
	return out
}
