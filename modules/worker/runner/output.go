package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// cappedBuffer keeps the first limit bytes written to it and drops the rest. It never refuses
// a write: the process on the other end of the pipe must not block because its output is
// larger than what the result can hold.
type cappedBuffer struct {
	buf       []byte
	limit     int
	truncated bool
}

func newCappedBuffer(limit int) *cappedBuffer {
	return &cappedBuffer{limit: limit}
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.limit - len(b.buf)
	if len(p) > room {
		b.truncated = true
		b.buf = append(b.buf, p[:max(room, 0)]...)
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *cappedBuffer) String() string { return string(b.buf) }

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
