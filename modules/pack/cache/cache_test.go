package cache_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/pack/cache"
)

// fakeStore serves archives by hash and counts the fetches.
type fakeStore struct {
	archives map[string][]byte
	current  []string
	fetches  atomic.Int32
}

func (s *fakeStore) PackVersionArchive(_ context.Context, _, hash string) ([]byte, error) {
	s.fetches.Add(1)
	return s.archives[hash], nil
}

func (s *fakeStore) PackVersionsCurrent(context.Context) ([]string, error) { return s.current, nil }

func version(t *testing.T, script string) pack.Content {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sensors"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pack.yaml"), []byte("ref: p\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sensors", "s.sh"), []byte(script), 0o755))
	c, err := pack.Archive(dir, pack.DefaultLimits)
	require.NoError(t, err)
	return c
}

// Many runs asking for one version together fetch it once; the copy is the version's files;
// Clean keeps what is current or in use and removes the rest.
func TestAcquireFetchesOnceAndCleanKeepsWhatIsUsed(t *testing.T) {
	v1, v2 := version(t, "#!/bin/sh\necho 1\n"), version(t, "#!/bin/sh\necho 2\n")
	st := &fakeStore{archives: map[string][]byte{v1.Hash: v1.Archive, v2.Hash: v2.Archive}, current: []string{v2.Hash}}
	c := cache.New(filepath.Join(t.TempDir(), "cache"), st)
	ctx := context.Background()

	var wg sync.WaitGroup
	releases := make(chan func(), 8)
	for range 8 {
		wg.Go(func() {
			// assert, not require: FailNow must not be called outside the test's goroutine.
			dir, release, err := c.Acquire(ctx, "p", v1.Hash)
			if assert.NoError(t, err) {
				assert.Equal(t, filepath.Join(c.Dir(), v1.Hash), dir)
				releases <- release
			}
		})
	}
	wg.Wait()
	close(releases)
	require.EqualValues(t, 1, st.fetches.Load(), "fetched once")
	got, err := pack.TreeHash(filepath.Join(c.Dir(), v1.Hash))
	require.NoError(t, err)
	require.Equal(t, v1.Hash, got)

	_, release2, err := c.Acquire(ctx, "p", v2.Hash)
	require.NoError(t, err)
	release2()
	removed, err := c.Clean(ctx)
	require.NoError(t, err)
	require.Empty(t, removed, "v1 is in use, v2 is current")
	for release := range releases {
		release()
	}
	removed, err = c.Clean(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{v1.Hash}, removed)
	require.DirExists(t, filepath.Join(c.Dir(), v2.Hash))
}

// An archive whose files do not hash to the version asked for is refused, and nothing of it
// is left in the cache.
func TestAcquireRefusesAnArchiveOfOtherFiles(t *testing.T) {
	v1, v2 := version(t, "#!/bin/sh\necho 1\n"), version(t, "#!/bin/sh\necho 2\n")
	st := &fakeStore{archives: map[string][]byte{v1.Hash: v2.Archive}}
	c := cache.New(filepath.Join(t.TempDir(), "cache"), st)
	_, _, err := c.Acquire(context.Background(), "p", v1.Hash)
	require.ErrorContains(t, err, "unpacked files hash to "+v2.Hash)
	entries, err := os.ReadDir(c.Dir())
	require.NoError(t, err)
	require.Empty(t, entries)

	_, _, err = c.Acquire(context.Background(), "p", "../"+strings.Repeat("a", 61))
	require.ErrorContains(t, err, "invalid version")
}

// A cache directory other users can write in is refused: a version found there is run as it
// is, so another user could have planted it.
func TestAcquireRefusesADirectoryOthersCanWrite(t *testing.T) {
	v1 := version(t, "#!/bin/sh\necho 1\n")
	st := &fakeStore{archives: map[string][]byte{v1.Hash: v1.Archive}}
	dir := filepath.Join(t.TempDir(), "cache")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, v1.Hash, "sensors"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, v1.Hash, "sensors", "s.sh"), []byte("#!/bin/sh\necho planted\n"), 0o755))
	require.NoError(t, os.Chmod(dir, 0o777))
	c := cache.New(dir, st)
	got, _, err := c.Acquire(context.Background(), "p", v1.Hash)
	require.ErrorContains(t, err, "writable by other users")
	require.Empty(t, got)

	require.NoError(t, os.Chmod(dir, 0o700))
	got, release, err := c.Acquire(context.Background(), "p", v1.Hash)
	require.NoError(t, err)
	release()
	require.Equal(t, filepath.Join(dir, v1.Hash), got)
}
