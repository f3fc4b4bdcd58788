package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// make help lists every target the Makefile declares phony, each with its help text whole,
// whatever that text holds (':' or parentheses included).
func TestMakeHelpListsEveryTarget(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	makefile, err := os.ReadFile("Makefile")
	require.NoError(t, err)
	phony := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindSubmatch(makefile)
	require.NotNil(t, phony, "no .PHONY line")
	help := regexp.MustCompile(`(?m)^([a-z-]+):.*?## (.*)$`).FindAllSubmatch(makefile, -1)
	texts := map[string]string{}
	for _, h := range help {
		texts[string(h[1])] = string(h[2])
	}

	out, err := exec.Command("make", "--no-print-directory", "help").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, target := range strings.Fields(string(phony[1])) {
		require.Contains(t, texts, target, "target %s has no ## help text", target)
		require.Regexp(t, `(?m)^  `+regexp.QuoteMeta(target)+` +`+regexp.QuoteMeta(texts[target])+`$`, string(out))
	}
}
