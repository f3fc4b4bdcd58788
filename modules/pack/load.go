package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and validates the pack in dir on disk. Pack.Dir is set to dir's absolute path,
// where a worker later finds the scripts.
func Load(dir string) (*Pack, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("load pack %s: %w", dir, err)
	}
	p, err := load(os.DirFS(abs), ".", abs)
	if err != nil {
		return nil, fmt.Errorf("load pack %s: %w", dir, err)
	}
	p.Dir = abs
	return p, nil
}

// LoadFS reads and validates the pack in directory dir of fsys ("." for its root). Pack.Dir
// is left empty, as an fs.FS has no directory on disk to run scripts from.
func LoadFS(fsys fs.FS, dir string) (*Pack, error) {
	p, err := load(fsys, dir, "")
	if err != nil {
		return nil, fmt.Errorf("load pack %s: %w", dir, err)
	}
	return p, nil
}

// loader reads one pack. Files are read in a fixed order (pack.yaml, then each component
// directory in turn, each in file name order) and the first error stops it, so the same
// broken pack always gives the same error.
type loader struct {
	fsys fs.FS
	dir  string
	// root is the pack's directory on disk when fsys is that directory: only then do scripts'
	// modes and links say what a worker will find, as an embedded or in-memory fs.FS has no
	// modes to speak of.
	root string
	ref  string
	// seen maps each ref to the file that defined it, per kind: refs are unique per kind, as
	// actions and triggers live in separate tables.
	seen map[string]map[string]string
}

func load(fsys fs.FS, dir, root string) (*Pack, error) {
	if !fs.ValidPath(dir) {
		return nil, fmt.Errorf("%q is not a valid fs.FS path", dir)
	}
	l := &loader{fsys: fsys, dir: dir, root: root, seen: map[string]map[string]string{}}
	p := &Pack{}
	if err := l.decode("pack.yaml", p); err != nil {
		return nil, err
	}
	switch {
	case p.Ref == "":
		return nil, &Error{File: "pack.yaml", Field: "ref", Err: errors.New("required")}
	case !packRefPattern.MatchString(p.Ref):
		return nil, &Error{File: "pack.yaml", Field: "ref", Err: fmt.Errorf("%q is not valid; want lower case letters, digits, _ and -, starting with a letter", p.Ref)}
	}
	l.ref = p.Ref

	err := l.each("actions", func(file string) error {
		a := Action{OutputFormat: OutputText, TimeoutSeconds: DefaultTimeoutSeconds, Enabled: true, File: file}
		if err := l.component(file, &a, a.validate); err != nil {
			return err
		}
		if err := l.entryPoint(&a); err != nil {
			return err
		}
		p.Actions = append(p.Actions, a)
		return l.claim("action", a.Ref, file)
	})
	if err != nil {
		return nil, err
	}
	if err := p.checkTasks(p.ownActionExists); err != nil {
		return nil, err
	}
	err = l.each("triggers", func(file string) error {
		t := Trigger{File: file}
		if err := l.component(file, &t, t.validate); err != nil {
			return err
		}
		p.Triggers = append(p.Triggers, t)
		return l.claim("trigger", t.Ref, file)
	})
	if err != nil {
		return nil, err
	}
	err = l.each("sensors", func(file string) error {
		s := Sensor{Enabled: true, File: file}
		if err := l.component(file, &s, s.validate); err != nil {
			return err
		}
		if s.EntryPoint != "" {
			// The sensor role runs it as a program, as the worker runs an action's script.
			if err := l.script("sensors", s.EntryPoint, true); err != nil {
				return &Error{File: file, Field: "entry_point", Err: err}
			}
		}
		p.Sensors = append(p.Sensors, s)
		return l.claim("sensor", s.Ref, file)
	})
	if err != nil {
		return nil, err
	}
	err = l.each("rules", func(file string) error {
		r := Rule{Enabled: true, File: file}
		if err := l.component(file, &r, r.validate); err != nil {
			return err
		}
		p.Rules = append(p.Rules, r)
		return l.claim("rule", r.Ref, file)
	})
	if err != nil {
		return nil, err
	}
	err = l.each("policies", func(file string) error {
		pol := Policy{Enabled: true, File: file}
		if err := l.component(file, &pol, pol.validate); err != nil {
			return err
		}
		p.Policies = append(p.Policies, pol)
		return l.claim("policy", pol.Ref, file)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// each calls fn with the path, relative to the pack, of every component file in sub. A
// missing directory is an empty one; dot files are skipped as editors and tools leave them.
func (l *loader) each(sub string, fn func(file string) error) error {
	entries, err := fs.ReadDir(l.fsys, path.Join(l.dir, sub))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &Error{File: sub, Err: err}
	}
	for _, e := range entries { // ReadDir sorts by name
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || (path.Ext(name) != ".yaml" && path.Ext(name) != ".yml") {
			continue
		}
		if err := fn(sub + "/" + name); err != nil {
			return err
		}
	}
	return nil
}

// component decodes file into v, which holds the defaults, and validates it.
func (l *loader) component(file string, v any, validate func(packRef string) error) error {
	if err := l.decode(file, v); err != nil {
		return err
	}
	if err := validate(l.ref); err != nil {
		return inFile(file, err)
	}
	return nil
}

// decode reads one YAML document from file into v, refusing unknown keys.
func (l *loader) decode(file string, v any) error {
	data, err := fs.ReadFile(l.fsys, path.Join(l.dir, file))
	if err != nil {
		return &Error{File: file, Err: err}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return &Error{File: file, Err: errors.New("empty file")}
		}
		return &Error{File: file, Err: yamlError(err)}
	}
	// A second document would otherwise be ignored without a word.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return &Error{File: file, Err: fmt.Errorf("line %d: more than one YAML document", extra.Line)}
	case !errors.Is(err, io.EOF):
		return &Error{File: file, Err: yamlError(err)}
	}
	return nil
}

// script checks that an entry point names a file in the pack's sub directory. On disk it also
// checks what the worker will find when it runs the file: that a link does not lead out of
// the pack, and, when run, that the file is executable (the worker runs it as a program, by
// its shebang, and refuses a file without an execute bit).
func (l *loader) script(sub, entryPoint string, run bool) error {
	name := path.Join(sub, entryPoint)
	info, err := fs.Stat(l.fsys, path.Join(l.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%q not found in %s/", entryPoint, sub)
	}
	if err != nil {
		return err
	}
	if l.root != "" {
		if err := l.inside(name); err != nil {
			return err
		}
	}
	switch {
	case info.IsDir():
		return fmt.Errorf("%s is a directory; want a script file", name)
	case !info.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", name)
	case run && l.root != "" && info.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable (mode %04o); the worker runs it as a program: chmod +x it", name, info.Mode().Perm())
	}
	return nil
}

// inside refuses a file of the pack that is, through symbolic links, somewhere else: the
// pack's scripts are what registering it vouches for, not whatever a link points at.
func (l *loader) inside(name string) error {
	root, err := filepath.EvalSymlinks(l.root)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(l.root, filepath.FromSlash(path.Join(l.dir, name))))
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s is a link that leads out of the pack, to %s", name, real)
	}
	return nil
}

// claim records ref for file, refusing a ref another file of the same kind already has.
func (l *loader) claim(kind, ref, file string) error {
	if l.seen[kind] == nil {
		l.seen[kind] = map[string]string{}
	}
	if other, ok := l.seen[kind][ref]; ok {
		return &Error{File: file, Field: "ref", Err: fmt.Errorf("%s %q is already defined in %s", kind, ref, other)}
	}
	l.seen[kind][ref] = file
	return nil
}
