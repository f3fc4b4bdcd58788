package reaper

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// MarkerOf returns the marker process pid would have as a worker called worker, so that a
// test can stand any process in for a worker and kill it to play the worker's death.
func MarkerOf(worker string, pid int) (Marker, error) {
	st, err := readStat(pid)
	if err != nil {
		return Marker{}, err
	}
	b := make([]byte, randomLen/2)
	_, _ = rand.Read(b)
	return Marker{Worker: worker, Instance: fmt.Sprintf("%d-%d-%s", pid, st.startTicks, hex.EncodeToString(b))}, nil
}
