package webui

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// The vendored files are the published ones, byte for byte, as VENDOR.md lists them.
func TestVendoredFilesAreAsPublished(t *testing.T) {
	table, err := os.ReadFile("VENDOR.md")
	require.NoError(t, err)
	rows := regexp.MustCompile("(?m)^\\| `(static/[^`]+)` \\|.*\\| ([0-9a-f]{64}) \\|$").FindAllSubmatch(table, -1)
	require.NotEmpty(t, rows, "no file listed in VENDOR.md")
	for _, row := range rows {
		body, err := os.ReadFile(string(row[1]))
		require.NoError(t, err)
		sum := sha256.Sum256(body)
		require.Equal(t, string(row[2]), hex.EncodeToString(sum[:]), "%s differs from the published file", row[1])
	}
}

// Every file under static/ is embedded and typed, and the page is there.
func TestEmbeddedFiles(t *testing.T) {
	ui, err := New()
	require.NoError(t, err)
	require.Contains(t, string(ui.index.body), `src="/assets/app.js"`)
	for name, f := range ui.files {
		require.NotEqual(t, "application/octet-stream", f.contentType, name)
	}
}
