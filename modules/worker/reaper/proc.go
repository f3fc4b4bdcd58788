package reaper

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// procDir is where Linux shows its processes.
const procDir = "/proc"

// userHZ is the unit of the start times in /proc/PID/stat: USER_HZ, which Linux fixes at 100
// on every architecture it runs Go on.
const userHZ = 100

// process is what the reaper reads of a live process.
type process struct {
	pid, pgid int
}

// procStat is the part of /proc/PID/stat the reaper reads.
type procStat struct {
	state      byte
	pgid       int
	startTicks uint64 // since boot, in 1/userHZ seconds
}

// scan returns the processes other than this one whose environment match accepts. A process
// whose environment cannot be read is skipped: it is gone, or it is another user's, which
// this one could not signal anyway. A zombie has an empty environment: it is dead already.
func scan(match func(environ []byte) bool) ([]process, error) {
	dir, err := os.Open(procDir)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var out []process
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		environ, err := os.ReadFile(procDir + "/" + name + "/environ")
		if err != nil || !match(environ) {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.state == 'Z' || st.state == 'X' {
			continue
		}
		out = append(out, process{pid: pid, pgid: st.pgid})
	}
	return out, nil
}

// readStat reads /proc/PID/stat. The command name is in parentheses and may hold anything,
// spaces and parentheses included, so the fields are counted from its last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(procDir + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("read /proc/%d/stat: no command name", pid)
	}
	// Fields 3 onwards of proc(5): state, ppid, pgrp, session, ..., starttime is field 22.
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("read /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	pgid, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("read /proc/%d/stat: process group: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("read /proc/%d/stat: start time: %w", pid, err)
	}
	return procStat{state: f[0][0], pgid: pgid, startTicks: start}, nil
}

// Age returns how long ago process pid started, and false when no such process lives (a
// zombie is dead). Both are measured on this host's clock since boot, so the answer does not
// depend on the wall clock.
func Age(pid int) (time.Duration, bool, error) {
	st, err := readStat(pid)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if st.state == 'Z' || st.state == 'X' {
		return 0, false, nil
	}
	b, err := os.ReadFile(procDir + "/uptime")
	if err != nil {
		return 0, false, err
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	uptime, err := strconv.ParseFloat(first, 64)
	if err != nil {
		return 0, false, fmt.Errorf("read /proc/uptime: %w", err)
	}
	age := time.Duration(uptime*float64(time.Second)) - time.Duration(st.startTicks)*time.Second/userHZ
	return max(age, 0), true, nil
}

// envHas reports whether environ, a /proc/PID/environ of NUL-terminated KEY=value strings,
// holds a variable that entry accepts.
func envHas(environ []byte, accept func(entry []byte) bool) bool {
	for len(environ) > 0 {
		entry := environ
		if i := bytes.IndexByte(environ, 0); i >= 0 {
			entry, environ = environ[:i], environ[i+1:]
		} else {
			environ = nil
		}
		if accept(entry) {
			return true
		}
	}
	return false
}

// envValue returns the value of the variable key in environ, a /proc/PID/environ.
func envValue(environ []byte, key string) (string, bool) {
	prefix := []byte(key + "=")
	var value []byte
	found := envHas(environ, func(e []byte) bool {
		v, ok := bytes.CutPrefix(e, prefix)
		value = v
		return ok
	})
	return string(value), found
}
