package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// cutMarkerRoom is what a cut output keeps free for its marker line, so that head, marker and
// tail together stay within the limit.
const cutMarkerRoom = 64

// CutMarker is the line that stands where cut bytes of an output were.
func CutMarker(cut int64) string {
	return fmt.Sprintf("\n[... attune cut %d bytes here ...]\n", cut)
}

// Cut says where the middle of an output was cut out: its first Head bytes are its start,
// a marker line of Marker bytes follows (CutMarker), then its end. Zero when nothing was cut.
type Cut struct {
	Head, Marker int
}

// headTailBuffer keeps the first half of limit bytes written to it and the last half, and
// counts what falls between: the start of an action's output says what it set out to do,
// the end is where its errors are. It never refuses a write: the process on the other end of
// the pipe must not block because its output is larger than what the result can hold.
type headTailBuffer struct {
	head    []byte
	headCap int
	// tail is a ring of the latest bytes past the head, once it has filled (tailCap bytes);
	// next is where the next byte goes. Both halves grow as written: most actions print a
	// few lines, and the limit is a megabyte.
	tail    []byte
	tailCap int
	next    int
	full    bool
	total   int64
}

func newHeadTailBuffer(limit int) *headTailBuffer {
	headCap := limit / 2
	return &headTailBuffer{headCap: headCap, tailCap: limit - headCap}
}

func (b *headTailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.total += int64(n)
	if room := b.headCap - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	size := b.tailCap
	switch {
	case len(p) == 0 || size == 0:
	case !b.full && len(b.tail)+len(p) <= size:
		b.tail = append(b.tail, p...)
	case len(p) >= size:
		b.tail = append(b.tail[:0], p[len(p)-size:]...)
		b.next, b.full = 0, true
	default:
		if !b.full {
			// The ring fills up here: what does not fit wraps round to its start.
			k := size - len(b.tail)
			b.tail = append(b.tail, p[:k]...)
			p, b.next, b.full = p[k:], 0, true
		}
		k := copy(b.tail[b.next:], p)
		copy(b.tail, p[k:])
		b.next = (b.next + len(p)) % size
	}
	return n, nil
}

// truncated reports whether bytes were cut.
func (b *headTailBuffer) truncated() bool {
	return b.total > int64(len(b.head)+len(b.tail))
}

// output is what the buffer kept: everything written when it fitted, else its start, a
// marker line of how many bytes were cut, and its end.
func (b *headTailBuffer) output() (string, Cut) {
	tail := b.tail
	if b.full {
		tail = append(slices.Clip(b.tail[b.next:]), b.tail[:b.next]...)
	}
	if !b.truncated() {
		return string(b.head) + string(tail), Cut{}
	}
	// Room for the marker comes off the tail's start, then whatever would begin it in the
	// middle of a UTF-8 character; the head loses a character it ends in the middle of.
	tail = tail[min(cutMarkerRoom, len(tail)):]
	for i := 0; i < utf8.UTFMax-1 && len(tail) > 0 && !utf8.RuneStart(tail[0]); i++ {
		tail = tail[1:]
	}
	head := b.head[:CompleteRunes(b.head)]
	marker := CutMarker(b.total - int64(len(head)+len(tail)))
	return string(head) + marker + string(tail), Cut{Head: len(head), Marker: len(marker)}
}

// CompleteRunes is the length of data without a UTF-8 character cut short at its end: where
// output can be cut, or must be held back until the rest of the character comes.
func CompleteRunes(data []byte) int {
	for k := 1; k <= min(utf8.UTFMax-1, len(data)); k++ {
		if c := data[len(data)-k]; utf8.RuneStart(c) {
			if !utf8.FullRune(data[len(data)-k:]) {
				return len(data) - k
			}
			break
		}
	}
	return len(data)
}

// readCapped reads at most limit bytes of r, reporting whether there was more.
func readCapped(r io.Reader, limit int) ([]byte, bool, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if len(data) > limit {
		return data[:limit], true, err
	}
	return data, false, err
}

// parseJSON decodes exactly one JSON value. Numbers stay json.Number so that large integers
// survive the round trip into the result column unrounded.
func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty output")
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the first JSON value")
	}
	return v, nil
}
