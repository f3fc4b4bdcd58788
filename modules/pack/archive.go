package pack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Limits bound what an archive may unpack to: an upload is untrusted input, and a small gzip
// can expand to fill a disk.
type Limits struct {
	// Compressed is the most bytes of .tar.gz read.
	Compressed int64
	// Size is the most bytes of file content unpacked.
	Size int64
	// Files is the most files unpacked.
	Files int
}

// DefaultLimits are the limits of an upload and of a version a worker fetches.
var DefaultLimits = Limits{Compressed: 64 << 20, Size: 256 << 20, Files: 10000}

// Content is a pack directory as one immutable version: a canonical gzip'd tar (sorted
// paths, no owners or times) and the hash that names it.
type Content struct {
	// Hash is the hex SHA-256 of the canonical listing of the files: one line per regular
	// file, in path order, with its slash path, mode (0644 or 0755) and content SHA-256.
	Hash    string
	Archive []byte
	// Size is the total bytes of file content, Files the number of files.
	Size  int64
	Files int
}

// ArchiveError is an archive refused for one of its entries, or for its size.
type ArchiveError struct {
	Entry  string
	Reason string
}

func (e *ArchiveError) Error() string {
	if e.Entry == "" {
		return "archive: " + e.Reason
	}
	return fmt.Sprintf("archive entry %q: %s", e.Entry, e.Reason)
}

// skipDir is left out of a version: a clone's history is not part of the pack.
const skipDir = ".git"

type packFile struct {
	path string // slash path relative to the pack
	mode int64
	sum  [sha256.Size]byte
	data []byte
}

// Archive reads the pack in dir as a version. Only regular files and directories are
// allowed: a symlink or a device would make the version mean different things on different
// hosts.
func Archive(dir string, lim Limits) (Content, error) {
	files, err := readTree(dir, lim, true)
	if err != nil {
		return Content{}, fmt.Errorf("archive pack %s: %w", dir, err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	c := Content{Hash: listingHash(files), Files: len(files)}
	for _, f := range files {
		c.Size += int64(len(f.data))
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.path, Mode: f.mode, Size: int64(len(f.data)), Format: tar.FormatPAX}); err != nil {
			return Content{}, fmt.Errorf("archive pack %s: %w", dir, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return Content{}, fmt.Errorf("archive pack %s: %w", dir, err)
		}
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		return Content{}, fmt.Errorf("archive pack %s: %w", dir, err)
	}
	c.Archive = buf.Bytes()
	return c, nil
}

// TreeHash is the hash Archive gives the files under dir: a worker checks with it that what
// it unpacked is the version it asked for.
func TreeHash(dir string) (string, error) {
	files, err := readTree(dir, Limits{Size: 1<<63 - 1, Files: 1<<31 - 1}, false)
	if err != nil {
		return "", fmt.Errorf("hash pack %s: %w", dir, err)
	}
	return listingHash(files), nil
}

func readTree(dir string, lim Limits, keep bool) ([]packFile, error) {
	var files []packFile
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			if d.Name() == skipDir && rel != "." {
				return filepath.SkipDir
			}
			return nil
		case !d.Type().IsRegular():
			return &ArchiveError{Entry: rel, Reason: "not a regular file or directory (symlinks and devices are not allowed in a pack)"}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if size += info.Size(); size > lim.Size {
			return &ArchiveError{Reason: fmt.Sprintf("files over %d bytes in all", lim.Size)}
		}
		if len(files) >= lim.Files {
			return &ArchiveError{Reason: fmt.Sprintf("over %d files", lim.Files)}
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f := packFile{path: rel, mode: canonicalMode(info.Mode()), sum: sha256.Sum256(data)}
		if keep {
			f.data = data
		}
		files = append(files, f)
		return nil
	})
	slices.SortFunc(files, func(a, b packFile) int { return strings.Compare(a.path, b.path) })
	return files, err
}

// canonicalMode keeps only whether a file is executable: owners and umasks differ by host.
func canonicalMode(m fs.FileMode) int64 {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

func listingHash(files []packFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %04o %x\n", f.path, f.mode, f.sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Extract unpacks the .tar.gz read from r into dir, which must exist and be empty. It refuses,
// naming the entry, absolute paths, paths that leave dir, links, devices and anything but
// regular files and directories, and archives over lim; dir may then hold part of the
// archive, so the caller unpacks into a directory of its own and removes it on error.
func Extract(r io.Reader, dir string, lim Limits) error {
	counted := &limitedReader{r: r, left: lim.Compressed}
	gz, err := gzip.NewReader(counted)
	if err != nil {
		return archiveErr(counted, &ArchiveError{Reason: fmt.Sprintf("not a gzip'd tar: %v", err)})
	}
	tr := tar.NewReader(gz)
	var size int64
	files, entries := 0, 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return archiveErr(counted, &ArchiveError{Reason: fmt.Sprintf("not a valid tar: %v", err)})
		}
		// Directories and skipped entries count too: a few bytes of gzip can hold millions of
		// directory headers, each an inode.
		if entries++; entries > maxEntries(lim) {
			return &ArchiveError{Reason: fmt.Sprintf("over %d entries (files and directories)", maxEntries(lim))}
		}
		name, err := entryPath(h.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("extract %s: %w", name, err)
			}
			continue
		case tar.TypeReg:
		case tar.TypeXGlobalHeader:
			continue
		default:
			return &ArchiveError{Entry: h.Name, Reason: "not a regular file or directory (links and devices are not allowed in a pack)"}
		}
		if files++; files > lim.Files {
			return &ArchiveError{Reason: fmt.Sprintf("over %d files", lim.Files)}
		}
		if size += h.Size; size > lim.Size {
			return &ArchiveError{Reason: fmt.Sprintf("files over %d bytes in all once unpacked", lim.Size)}
		}
		if err := writeEntry(tr, target, h); err != nil {
			return archiveErr(counted, fmt.Errorf("extract %s: %w", name, err))
		}
	}
}

// maxEntries bounds the entries of any type an archive may hold: room for a directory per
// file, as "tar czf" writes them.
func maxEntries(lim Limits) int { return 2 * lim.Files }

// entryPath is the entry's cleaned slash path inside the pack, "" for the pack's root.
func entryPath(name string) (string, error) {
	if strings.Contains(name, "\\") || path.IsAbs(name) || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return "", &ArchiveError{Entry: name, Reason: "absolute path (every entry must be relative to the pack)"}
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", &ArchiveError{Entry: name, Reason: "path leaves the pack directory (..)"}
	}
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

func writeEntry(r io.Reader, target string, h *tar.Header) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(canonicalMode(fs.FileMode(h.Mode))))
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, r, h.Size)
	return errors.Join(err, f.Close())
}

// archiveErr is err, or the size refusal when the compressed limit is what cut it short.
func archiveErr(r *limitedReader, err error) error {
	if r.over {
		return &ArchiveError{Reason: fmt.Sprintf("over %d bytes compressed", r.limit())}
	}
	return err
}

// limitedReader fails once more than left bytes are read, and remembers it did.
type limitedReader struct {
	r    io.Reader
	left int64
	read int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.over = true
		return 0, errors.New("archive too large")
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	l.read += int64(n)
	return n, err
}

func (l *limitedReader) limit() int64 { return l.read + l.left }

// Root is the directory of the pack unpacked into dir: dir itself when it holds pack.yaml,
// or its only subdirectory when that does (an archive made with "tar czf demo.tar.gz demo/").
func Root(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "pack.yaml")); err == nil {
		return dir, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	if len(entries) == 1 && entries[0].IsDir() {
		sub := filepath.Join(dir, entries[0].Name())
		if _, err := os.Stat(filepath.Join(sub, "pack.yaml")); err == nil {
			return sub, nil
		}
	}
	return "", errors.New("archive: no pack.yaml at its top, nor in its only directory")
}
