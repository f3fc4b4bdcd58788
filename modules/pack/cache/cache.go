// Package cache keeps a process's local copies of pack versions, fetched from the store once
// per hash and checked against it: what the worker runs actions from and the sensor role runs
// custom sensors from, so that no host needs a pack's directory.
package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/attune-go/attune/modules/pack"
)

// Store is where the cache fetches the versions of packs.
type Store interface {
	PackVersionArchive(ctx context.Context, ref, hash string) ([]byte, error)
	PackVersionsCurrent(ctx context.Context) ([]string, error)
}

// Cache keeps the pack versions one process runs, one directory per version hash under its
// directory: fetched from PostgreSQL once, checked against the hash, unpacked whole (temporary
// directory, then rename), and kept across restarts. Versions that are neither a pack's
// current one nor in use by this process are removed by Clean. A cache belongs to one process:
// it does not know what another one uses from the same directory.
type Cache struct {
	dir   string
	store Store

	// fetching serialises fetches and cleaning: one version is fetched once however many
	// runs ask for it together, and clean never removes what is being unpacked.
	fetching sync.Mutex
	// mu guards inUse, and is held across clean's removals: a run that takes a version
	// either counts before clean looks, or finds its directory gone and fetches it again.
	mu    sync.Mutex
	inUse map[string]int
}

// New returns the cache kept in dir, fetching from st.
func New(dir string, st Store) *Cache {
	return &Cache{dir: dir, store: st, inUse: map[string]int{}}
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// DefaultDir is where a process named name keeps its cache of kind ("packs" for a worker)
// unless told: under the user's cache directory, else the temporary one.
func DefaultDir(kind, name string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "attune", kind, name)
}

// tmpPrefix names the directories a fetch unpacks into; a crash mid-fetch leaves one, which
// clean removes.
const tmpPrefix = ".fetch-"

// Acquire returns the directory of version hash of pack ref, fetching it first if this
// cache has not got it, and a release to call when the run using it ends.
func (c *Cache) Acquire(ctx context.Context, ref, hash string) (string, func(), error) {
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
	if err := c.private(); err != nil {
		release()
		return "", nil, err
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

// private makes the cache's directory if need be and checks that only this process's user can
// write in it: a version found there is run as it is, unchecked, so a directory another user
// made first (the default falls back to the shared temporary directory) would let them plant
// the scripts this process runs.
func (c *Cache) private() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("make pack cache %s: %w", c.dir, err)
	}
	info, err := os.Lstat(c.dir)
	if err != nil {
		return fmt.Errorf("check pack cache %s: %w", c.dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("pack cache %s is not a directory", c.dir)
	}
	if info.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("pack cache %s is writable by other users (mode %04o): give it to this user alone, or choose another directory", c.dir, info.Mode().Perm())
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("pack cache %s belongs to user %d, not to this process's user %d: choose another directory", c.dir, st.Uid, os.Getuid())
	}
	return nil
}

func (c *Cache) fetch(ctx context.Context, ref, hash, dir string) error {
	c.fetching.Lock()
	defer c.fetching.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return nil // fetched by the run this one waited for
	}
	archive, err := c.store.PackVersionArchive(ctx, ref, hash)
	if err != nil {
		return fmt.Errorf("fetch pack %s version %s: %w", ref, hash, err)
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

// Clean removes the cached versions that no pack has as its current one and no run of this
// process uses, and what an interrupted fetch left; it returns the hashes it removed.
func (c *Cache) Clean(ctx context.Context) ([]string, error) {
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

// CleanEvery is how often KeepClean cleans besides at start.
const CleanEvery = 10 * time.Minute

// KeepClean cleans the cache now and every CleanEvery until ctx ends. A failure is logged:
// the cache only grows meanwhile.
func (c *Cache) KeepClean(ctx context.Context, log *slog.Logger) {
	for {
		removed, err := c.Clean(ctx)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "cleaning the pack cache failed", "dir", c.dir, "err", err)
		}
		if len(removed) > 0 {
			log.InfoContext(ctx, "pack versions removed from the cache", "dir", c.dir, "versions", removed)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(CleanEvery):
		}
	}
}
