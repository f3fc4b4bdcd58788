package app_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The errors docs/configuration.md shows for "attune serve" are the binary's, word for word:
// each "$ attune serve ..." line of "What bad input answers" is run, and its one "attune: "
// line must be the line the page shows under it.
func TestConfigurationDocShowsTheBinarysErrors(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/configuration.md")
	require.NoError(t, err)
	_, section, found := strings.Cut(string(doc), "## What bad input answers")
	require.True(t, found, "no section What bad input answers")
	lines := strings.Split(section, "\n")
	ran := 0
	for i, line := range lines[:len(lines)-1] {
		command, ok := strings.CutPrefix(line, "$ attune serve ")
		if !ok {
			continue
		}
		want := lines[i+1]
		ran++
		t.Run(command, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve", "--http-addr=127.0.0.1:0"}, strings.Fields(command)...)
			_, stderr, code := runAttune(t, args...)
			require.NotEqual(t, 0, code, stderr)
			var errs []string
			for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if strings.HasPrefix(l, "attune: ") {
					errs = append(errs, l)
				}
			}
			require.Equal(t, []string{want}, errs, "stderr:\n%s", stderr)
		})
	}
	require.GreaterOrEqual(t, ran, 3, "the page's serve examples were not found")
}
