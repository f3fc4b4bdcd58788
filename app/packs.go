package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// registerPacks registers the built-in core pack, then every pack under dir. Every process
// does it at start; registration is an idempotent upsert, so replicas starting together
// agree. A broken pack stops the start: running with half the packs an operator asked for
// would be worse.
func registerPacks(ctx context.Context, st *store.Store, dir string, logger *slog.Logger) error {
	core, err := pack.Core()
	if err != nil {
		return err
	}
	if _, err := pack.Register(ctx, st, core); err != nil {
		return fmt.Errorf("register core pack: %w", err)
	}
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read --packs-dir: %w", err)
	}
	for _, e := range entries {
		packDir := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(packDir, "pack.yaml")); !e.IsDir() || errors.Is(err, os.ErrNotExist) {
			continue
		}
		abs, err := filepath.Abs(packDir)
		if err != nil {
			return fmt.Errorf("register pack %s: %w", packDir, err)
		}
		p, err := pack.Load(abs)
		if err != nil {
			return fmt.Errorf("register pack %s: %w", packDir, err)
		}
		registered, err := pack.Register(ctx, st, p)
		if err != nil {
			return fmt.Errorf("register pack %s: %w", packDir, err)
		}
		logger.InfoContext(ctx, "pack registered", "pack", p.Ref, "path", abs, "changes", registered.Changes)
	}
	return nil
}
