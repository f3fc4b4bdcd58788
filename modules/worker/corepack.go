package worker

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/attune-go/attune/modules/pack"
)

// writeCorePack copies the built-in core pack's files to a private directory: its shell
// actions are real scripts run as processes, and they live inside the binary.
func writeCorePack() (string, error) {
	dir, err := os.MkdirTemp("", "attune-core-pack-")
	if err != nil {
		return "", fmt.Errorf("write core pack: %w", err)
	}
	err = fs.WalkDir(pack.CoreFS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := fs.ReadFile(pack.CoreFS(), path)
		if err != nil {
			return err
		}
		// Embedded files carry no modes; scripts must be executable to honour their shebang.
		return os.WriteFile(target, b, 0o755)
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("write core pack: %w", err)
	}
	return dir, nil
}
