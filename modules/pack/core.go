package pack

import (
	"embed"
	"fmt"
	"io/fs"
)

// coreFiles holds the core pack. Embedding drops file modes, so the scripts under
// core/actions are not executable as embedded: a worker that writes them to disk must chmod
// them (or run them with /bin/sh).
//
//go:embed core
var coreFiles embed.FS

// CoreFS returns the embedded core pack's files, rooted at the pack directory, for a worker to
// write its scripts to disk and for LoadFS(CoreFS(), ".").
func CoreFS() fs.FS {
	sub, err := fs.Sub(coreFiles, "core")
	if err != nil {
		panic(err) // "core" is a valid path; fs.Sub fails on nothing else
	}
	return sub
}

// Core loads the embedded core pack: the timers, the webhook trigger and the basic actions
// every installation has.
func Core() (*Pack, error) {
	p, err := load(CoreFS(), ".", "")
	if err != nil {
		return nil, fmt.Errorf("load core pack: %w", err)
	}
	return p, nil
}
