package pack_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/pack"
)

// A version unpacks to the files it was made of, with the same hash; the hash follows content
// and the executable bit only, not times, and leaves a clone's .git out.
func TestArchiveRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"pack.yaml": "ref: rt\n", "actions/run.sh": "#!/bin/sh\n", ".git/HEAD": "ref"})
	c, err := pack.Archive(dir, pack.DefaultLimits)
	require.NoError(t, err)
	require.Equal(t, 2, c.Files)

	out := t.TempDir()
	require.NoError(t, pack.Extract(bytes.NewReader(c.Archive), out, pack.DefaultLimits))
	got, err := pack.TreeHash(out)
	require.NoError(t, err)
	require.Equal(t, c.Hash, got)
	info, err := os.Stat(filepath.Join(out, "actions", "run.sh"))
	require.NoError(t, err)
	require.NotZero(t, info.Mode()&0o100, "the executable bit travels")

	require.NoError(t, os.Chtimes(filepath.Join(dir, "pack.yaml"), time.Now(), time.Unix(0, 0)))
	again, err := pack.Archive(dir, pack.DefaultLimits)
	require.NoError(t, err)
	require.Equal(t, c.Hash, again.Hash)
	require.Equal(t, c.Archive, again.Archive, "the archive is canonical")
	require.NoError(t, os.Chmod(filepath.Join(dir, "pack.yaml"), 0o755))
	changed, err := pack.Archive(dir, pack.DefaultLimits)
	require.NoError(t, err)
	require.NotEqual(t, c.Hash, changed.Hash)
}

// An archive over a limit is refused saying which.
func TestExtractLimits(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 4096)
	archive := func(n int) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for i := range n {
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: "f" + string(rune('a'+i)), Mode: 0o644, Size: int64(len(big)), Typeflag: tar.TypeReg}))
			_, err := tw.Write([]byte(big))
			require.NoError(t, err)
		}
		require.NoError(t, tw.Close())
		require.NoError(t, gz.Close())
		return buf.Bytes()
	}
	for name, tt := range map[string]struct {
		lim  pack.Limits
		want string
	}{
		"files":      {pack.Limits{Compressed: 1 << 20, Size: 1 << 20, Files: 2}, "archive: over 2 files"},
		"size":       {pack.Limits{Compressed: 1 << 20, Size: 10000, Files: 10}, "archive: files over 10000 bytes in all once unpacked"},
		"compressed": {pack.Limits{Compressed: 100, Size: 1 << 20, Files: 10}, "archive: over 100 bytes compressed"},
	} {
		err := pack.Extract(bytes.NewReader(archive(3)), t.TempDir(), tt.lim)
		var refused *pack.ArchiveError
		require.ErrorAs(t, err, &refused, name)
		require.EqualError(t, err, tt.want, name)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a": big, "b": big})
	_, err := pack.Archive(dir, pack.Limits{Size: 5000, Files: 10})
	require.ErrorContains(t, err, "files over 5000 bytes in all")
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "link")))
	_, err = pack.Archive(dir, pack.DefaultLimits)
	require.ErrorContains(t, err, `archive entry "link": not a regular file or directory`)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		require.NoError(t, os.WriteFile(p, []byte(body), mode))
	}
}

// Directory entries count against the limits too: a small gzip of directory headers would
// otherwise make millions of directories.
func TestExtractDirectoryBomb(t *testing.T) {
	t.Parallel()
	archive := func(headers ...*tar.Header) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for _, h := range headers {
			require.NoError(t, tw.WriteHeader(h))
		}
		require.NoError(t, tw.Close())
		require.NoError(t, gz.Close())
		return buf.Bytes()
	}
	lim := pack.Limits{Compressed: 1 << 20, Size: 1 << 20, Files: 3}
	var dirs []*tar.Header
	for i := range 20 {
		dirs = append(dirs, &tar.Header{Name: "d" + string(rune('a'+i)) + "/", Mode: 0o755, Typeflag: tar.TypeDir})
	}
	out := t.TempDir()
	err := pack.Extract(bytes.NewReader(archive(dirs...)), out, lim)
	var refused *pack.ArchiveError
	require.ErrorAs(t, err, &refused)
	require.EqualError(t, err, "archive: over 6 entries (files and directories)")
	made, err := os.ReadDir(out)
	require.NoError(t, err)
	require.LessOrEqual(t, len(made), 6)

	// A pack as "tar czf" writes it, a directory per file, is within the limits.
	require.NoError(t, pack.Extract(bytes.NewReader(archive(
		&tar.Header{Name: "p/", Mode: 0o755, Typeflag: tar.TypeDir},
		&tar.Header{Name: "p/a/", Mode: 0o755, Typeflag: tar.TypeDir},
		&tar.Header{Name: "p/b/", Mode: 0o755, Typeflag: tar.TypeDir},
	)), t.TempDir(), lim))
}
