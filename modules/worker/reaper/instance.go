package reaper

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// An instance token is "<pid>-<start>-<random>": the worker process's pid and its start time
// (in clock ticks since boot, from /proc/PID/stat), which together name one process for as
// long as the host runs, whatever reuses the pid later, then 16 random bytes in hex, so that
// no two worker processes share a token, on any host. A later process of the worker's name
// reads from the token whether the worker that marked a process still runs: a worker's name
// is meant to be unique while it lives, but nothing stops two processes from being started
// with the same one, and neither may end the other's actions.

// randomLen is the length of a token's random part, in hex digits.
const randomLen = 32

// owner is the worker process an instance token names.
type owner struct {
	pid int
	// start is in clock ticks since boot; zero when it could not be read (no /proc), which
	// makes the pid alone decide.
	start uint64
}

// newInstance returns the instance token of this process.
func newInstance() string {
	b := make([]byte, randomLen/2)
	_, _ = rand.Read(b) // never fails on Linux
	pid := os.Getpid()
	var start uint64
	if st, err := readStat(pid); err == nil {
		start = st.startTicks
	}
	return fmt.Sprintf("%d-%d-%s", pid, start, hex.EncodeToString(b))
}

// parseInstance reads the worker process out of an instance token; false when s is not one.
func parseInstance(s string) (owner, bool) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 || len(parts[2]) != randomLen {
		return owner{}, false
	}
	if _, err := hex.DecodeString(parts[2]); err != nil {
		return owner{}, false
	}
	pid, err := strconv.Atoi(parts[0])
	if err != nil || pid <= 0 || parts[0] != strconv.Itoa(pid) {
		return owner{}, false
	}
	start, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil || parts[1] != strconv.FormatUint(start, 10) {
		return owner{}, false
	}
	return owner{pid: pid, start: start}, true
}

// instanceAlive reports whether the worker process of the instance token s still runs. A token
// that does not name a process (one of an older attune, or forged) cannot be shown dead, so it
// reads alive: its processes are left alone.
func instanceAlive(s string) (bool, error) {
	o, ok := parseInstance(s)
	if !ok {
		return true, nil
	}
	st, err := readStat(o.pid)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("read the state of worker process %d: %w", o.pid, err)
	}
	if st.state == 'Z' || st.state == 'X' {
		return false, nil
	}
	return o.start == 0 || st.startTicks == o.start, nil
}
