package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/attune-go/attune/modules/pack"
)

// PackStore is where the worker fetches the versions of packs it runs.
type PackStore interface {
	PackVersionArchive(ctx context.Context, ref, hash string) ([]byte, error)
	PackVersionsCurrent(ctx context.Context) ([]string, error)
}

// packCache keeps the pack versions this worker runs actions from, one directory per version
// hash under dir: fetched from PostgreSQL once, checked against the hash, unpacked whole
// (temporary directory, then rename), and kept across restarts. Versions that are neither a
// pack's current one nor in use by a run of this worker are removed by clean.
type packCache struct {
	dir   string
	store PackStore

	// fetching serialises fetches and cleaning: one version is fetched once however many
	// executions ask for it together, and clean never removes what is being unpacked.
	fetching sync.Mutex
	// mu guards inUse, and is held across clean's removals: a run that takes a version
	// either counts before clean looks, or finds its directory gone and fetches it again.
	mu    sync.Mutex
	inUse map[string]int
}

func newPackCache(dir string, st PackStore) *packCache {
	return &packCache{dir: dir, store: st, inUse: map[string]int{}}
}

// tmpPrefix names the directories a fetch unpacks into; a crash mid-fetch leaves one, which
// clean removes.
const tmpPrefix = ".fetch-"

// acquire returns the directory of version hash of pack ref, fetching it first if this
// worker has not got it, and a release to call when the run ends.
func (c *packCache) acquire(ctx context.Context, ref, hash string) (string, func(), error) {
	if len(hash) != 64 || strings.ContainsAny(hash, "./\\") {
		return "", nil, fmt.Errorf("pack %s: invalid version %q", ref, hash)
	}
	c.mu.Lock()
	c.inUse[hash]++
	c.mu.Unlock()
	release := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.inUse[hash]--; c.inUse[hash] <= 0 {
			delete(c.inUse, hash)
		}
	}
	dir := filepath.Join(c.dir, hash)
	if _, err := os.Stat(dir); err == nil {
		return dir, release, nil
	}
	if err := c.fetch(ctx, ref, hash, dir); err != nil {
		release()
		return "", nil, err
	}
	return dir, release, nil
}

func (c *packCache) fetch(ctx context.Context, ref, hash, dir string) error {
	c.fetching.Lock()
	defer c.fetching.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return nil // fetched by the run this one waited for
	}
	archive, err := c.store.PackVersionArchive(ctx, ref, hash)
	if err != nil {
		return fmt.Errorf("fetch pack %s version %s: %w", ref, hash, err)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("make pack cache %s: %w", c.dir, err)
	}
	tmp, err := os.MkdirTemp(c.dir, tmpPrefix)
	if err != nil {
		return fmt.Errorf("fetch pack %s version %s: %w", ref, hash, err)
	}
	err = func() error {
		if err := pack.Extract(bytes.NewReader(archive), tmp, pack.DefaultLimits); err != nil {
			return err
		}
		got, err := pack.TreeHash(tmp)
		if err != nil {
			return err
		}
		if got != hash {
			return fmt.Errorf("unpacked files hash to %s", got)
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		return os.Rename(tmp, dir)
	}()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("fetch pack %s version %s: %w", ref, hash, err)
	}
	return nil
}

// clean removes the cached versions that no pack has as its current one and no run of this
// worker uses, and what an interrupted fetch left; it returns the hashes it removed.
func (c *packCache) clean(ctx context.Context) ([]string, error) {
	current, err := c.store.PackVersionsCurrent(ctx)
	if err != nil {
		return nil, fmt.Errorf("clean pack cache: %w", err)
	}
	keep := make(map[string]bool, len(current))
	for _, h := range current {
		keep[h] = true
	}
	c.fetching.Lock()
	defer c.fetching.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clean pack cache: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		ours := len(name) == 64 && strings.Trim(name, "0123456789abcdef") == "" || strings.HasPrefix(name, tmpPrefix)
		if !ours || keep[name] || c.inUse[name] > 0 {
			continue
		}
		if err := os.RemoveAll(filepath.Join(c.dir, name)); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// packCacheCleanEvery is how often a worker cleans its pack cache besides at start.
const packCacheCleanEvery = 10 * time.Minute

// cleanPackCache cleans the pack cache now and every packCacheCleanEvery until ctx ends. A
// failure is logged: the cache only grows meanwhile.
func (m *Module) cleanPackCache(ctx context.Context) {
	for {
		removed, err := m.packs.clean(ctx)
		if err != nil && ctx.Err() == nil {
			m.deps.Logger.WarnContext(ctx, "cleaning the pack cache failed", "dir", m.packs.dir, "err", err)
		}
		if len(removed) > 0 {
			m.deps.Logger.InfoContext(ctx, "pack versions removed from the cache", "dir", m.packs.dir, "versions", removed)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(packCacheCleanEvery):
		}
	}
}
