package reaper

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// dirPrefix begins the name of every worker process's directory.
const dirPrefix = "attune-worker-"

// maxPathName bounds a worker's name in a directory's name, which Linux caps at 255 bytes with
// the prefix and the instance token.
const maxPathName = 128

// Dir is the directory of this worker process's files under tmp (the values of parameters too
// large for an action's environment, secrets among them). It is named by the marker, so that
// the companion removes it once it has ended the actions, and a later process of the worker's
// name removes it when this one died with its companion.
func (m Marker) Dir(tmp string) string {
	return filepath.Join(tmp, m.dirName())
}

func (m Marker) dirName() string {
	return dirPrefix + pathName(m.Worker) + "-" + m.Instance
}

// pathName is a worker's name as part of a file name: ASCII letters, digits, '-' and '_' as
// they are and every other byte as %XX, so that two names never share one, or, past
// maxPathName, '~' and the name's SHA-256 (no escaped name has a '~').
func pathName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() > maxPathName {
		sum := sha256.Sum256([]byte(name))
		return "~" + hex.EncodeToString(sum[:])
	}
	return b.String()
}

// checkDir reports whether dir can be this worker process's directory: the companion removes
// what its command line names, so a wrong one must not get that far.
func (m Marker) checkDir(dir string) error {
	if !filepath.IsAbs(dir) || filepath.Base(dir) != m.dirName() {
		return fmt.Errorf("%q is not the directory of worker %s instance %s: want an absolute path ending in %s", dir, m.Worker, m.Instance, m.dirName())
	}
	return nil
}

// Earlier is what EndEarlier found and did.
type Earlier struct {
	// Reaped lists the processes of gone processes' actions it ended.
	Reaped
	// Dirs lists the directories of gone processes it removed.
	Dirs []string
	// Live lists the instances of the other processes of the name that still run, found by
	// their actions or their directories: two workers share the name. What is theirs is left
	// alone.
	Live []string
}

// EndEarlier ends what the earlier processes of m's worker name left on this host when they
// died with their companion: the processes of their actions (see Reap), then their
// directories under tmp. A process of the name that still runs keeps both. When the reap gives
// up (a process stuck in the kernel), the directories are removed all the same and the error
// says what was left.
func EndEarlier(ctx context.Context, m Marker, tmp string, opts Options) (Earlier, error) {
	var e Earlier
	live := map[string]bool{}
	// The matcher only takes note: a scan that matches nothing signals nothing.
	_, err := scan(func(environ []byte) bool {
		if instance, ok := m.other(environ); ok && !live[instance] {
			if alive, _ := instanceAlive(instance); alive {
				live[instance] = true
			}
		}
		return false
	})
	if err != nil {
		return e, err
	}
	var errs []error
	e.Reaped, err = Reap(ctx, m.Earlier, opts)
	if err != nil {
		errs = append(errs, fmt.Errorf("end the actions of earlier processes of worker %s: %w (left: %v)", m.Worker, err, e.Left))
	}
	dirs, err := m.otherDirs(tmp)
	if err != nil {
		errs = append(errs, err)
	}
	for _, d := range dirs {
		alive, err := instanceAlive(d.instance)
		if err != nil {
			errs = append(errs, err)
		}
		if alive {
			live[d.instance] = true
			continue
		}
		if err := os.RemoveAll(d.path); err != nil {
			errs = append(errs, fmt.Errorf("remove the directory of an earlier process of worker %s: %w", m.Worker, err))
			continue
		}
		e.Dirs = append(e.Dirs, d.path)
	}
	for instance := range live {
		e.Live = append(e.Live, instance)
	}
	slices.Sort(e.Live)
	return e, errors.Join(errs...)
}

// instanceDir is the directory of a process of a worker's name.
type instanceDir struct {
	path, instance string
}

// otherDirs lists the directories under tmp of the other processes of m's worker name that
// this user owns. What follows the name must be a whole instance token: a name is escaped, so
// another name that begins with this one leaves more than a token after it.
func (m Marker) otherDirs(tmp string) ([]instanceDir, error) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("list the directories of earlier processes of worker %s: %w", m.Worker, err)
	}
	prefix := dirPrefix + pathName(m.Worker) + "-"
	uid := os.Getuid()
	var out []instanceDir
	for _, entry := range entries {
		instance, ok := strings.CutPrefix(entry.Name(), prefix)
		if !ok || instance == m.Instance || !entry.IsDir() {
			continue
		}
		if _, ok := parseInstance(instance); !ok {
			continue
		}
		info, err := entry.Info()
		if err != nil {
			continue // gone since
		}
		if st, ok := info.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid {
			continue
		}
		out = append(out, instanceDir{path: filepath.Join(tmp, entry.Name()), instance: instance})
	}
	return out, nil
}
