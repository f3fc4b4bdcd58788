package reaper_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/worker/reaper"
)

// A starting worker ends what the earlier processes of its name left once they are gone (the
// processes of their actions and their directories), and leaves alone, and names, those of
// one that still runs, whether found by its actions or by its directory; and everything of
// other names, one that begins with its own included.
func TestEndEarlier(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	worker := "w/" + strconv.Itoa(os.Getpid()) + "-earlier" // a byte no file name may hold
	dead, die := standIn(t, worker)
	acting, _ := standIn(t, worker)  // runs an action, has no directory
	holding, _ := standIn(t, worker) // has a directory, runs no action
	longer, dieLonger := standIn(t, worker+"-x")
	mine := reaper.NewMarker(worker)

	deadTree := startTree(t, dead.Env()...)
	actingTree := startTree(t, acting.Env()...)
	longerTree := startTree(t, longer.Env()...)
	for _, m := range []reaper.Marker{dead, holding, longer, mine} {
		require.NoError(t, os.MkdirAll(filepath.Join(m.Dir(tmp), "attune-execution-7-x"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(m.Dir(tmp), "attune-execution-7-x", "ATTUNE_PARAM_TOKEN"), []byte("s3cret"), 0o600))
	}
	junk := strings.TrimSuffix(dead.Dir(tmp), dead.Instance) + "not-a-token"
	require.NoError(t, os.Mkdir(junk, 0o700))
	die()
	dieLonger()

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	e, err := reaper.EndEarlier(ctx, mine, tmp, reaper.Options{})
	require.NoError(t, err)
	require.Subset(t, e.PIDs, []int{deadTree.leader, deadTree.child, deadTree.detached})
	require.Empty(t, e.Left)
	requireGone(t, deadTree.pids()...)
	requireAlive(t, actingTree.pids()...)
	requireAlive(t, longerTree.pids()...)
	require.Equal(t, []string{dead.Dir(tmp)}, e.Dirs)
	require.NoDirExists(t, dead.Dir(tmp))
	for _, dir := range []string{holding.Dir(tmp), longer.Dir(tmp), mine.Dir(tmp), junk} {
		require.DirExists(t, dir)
	}
	require.ElementsMatch(t, []string{acting.Instance, holding.Instance}, e.Live, "two workers share the name")

	e, err = reaper.EndEarlier(ctx, mine, tmp, reaper.Options{})
	require.NoError(t, err)
	require.Empty(t, e.PIDs)
	require.Empty(t, e.Dirs)
}

// A worker's directory is named by its marker whatever its name: one file name, distinct
// for distinct names, within Linux's 255 bytes.
func TestDirNames(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	seen := map[string]string{}
	for _, name := range []string{"a/b", "a%2Fb", "a_2Fb", "a-b", "é", strings.Repeat("x", 300), strings.Repeat("x", 301), strings.Repeat("/", 200)} {
		m := reaper.NewMarker(name)
		dir := m.Dir(tmp)
		require.Equal(t, tmp, filepath.Dir(dir), name)
		base := filepath.Base(dir)
		require.LessOrEqual(t, len(base), 255, name)
		prefix := strings.TrimSuffix(base, m.Instance)
		require.NotContains(t, seen, prefix, "%q and %q", name, seen[prefix])
		seen[prefix] = name
		require.NoError(t, os.Mkdir(dir, 0o700), name)
	}
}
