package sensor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/attune-go/attune/modules/pack"
)

// maxLine bounds one line of a sensor's output: an event's payload, as the API bounds a
// webhook's body. A longer line is skipped whole, with a reason.
const maxLine = 1 << 20

// emitted is one event a sensor asked for: a line of its stdout that passed the checks.
type emitted struct {
	Trigger string
	Payload json.RawMessage
}

// lineChecker checks a sensor's lines against its trigger_refs and their payload schemas.
type lineChecker struct {
	triggers []string
	outputs  map[string]pack.Schema
}

func newLineChecker(triggers []string, outputs map[string]json.RawMessage) (*lineChecker, error) {
	c := &lineChecker{triggers: triggers, outputs: make(map[string]pack.Schema, len(outputs))}
	for ref, raw := range outputs {
		var s pack.Schema
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode payload schema of trigger %s: %w", ref, err)
		}
		c.outputs[ref] = s
	}
	return c, nil
}

// check reads one line as {"trigger": "pack.name", "payload": {...}}, and says why it is no
// event when it is none. The reasons never quote the payload, which may be large or secret.
func (c *lineChecker) check(line []byte) (emitted, error) {
	var msg struct {
		Trigger string          `json:"trigger"`
		Payload json.RawMessage `json:"payload"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		return emitted{}, fmt.Errorf(`not a JSON object {"trigger": ..., "payload": {...}}: %w`, err)
	}
	if dec.More() {
		return emitted{}, errors.New("more than one JSON value on the line")
	}
	switch {
	case msg.Trigger == "":
		return emitted{}, errors.New("trigger: required")
	case !slices.Contains(c.triggers, msg.Trigger):
		return emitted{}, fmt.Errorf("trigger: %q is not one of the sensor's trigger_refs %v", bounded(msg.Trigger, 200), c.triggers)
	}
	schema, ok := c.outputs[msg.Trigger]
	if !ok {
		return emitted{}, fmt.Errorf("trigger: no trigger %q is registered", msg.Trigger)
	}
	var payload map[string]any
	if len(msg.Payload) > 0 && !bytes.Equal(msg.Payload, []byte("null")) {
		if err := json.Unmarshal(msg.Payload, &payload); err != nil {
			return emitted{}, errors.New("payload: want a JSON object")
		}
	}
	if err := schema.CheckPayload(payload); err != nil {
		return emitted{}, fmt.Errorf("payload: %w", err)
	}
	if payload == nil {
		msg.Payload = json.RawMessage(`{}`)
	}
	return emitted{Trigger: msg.Trigger, Payload: msg.Payload}, nil
}

// readLines calls fn with each line of r (without its end), and with tooLong set for a line
// over maxLine, whose text it does not keep. It returns when r ends.
func readLines(r io.Reader, fn func(line []byte, tooLong bool)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	tooLong := false
	for {
		frag, isPrefix, err := br.ReadLine()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if !tooLong {
			if len(buf)+len(frag) > maxLine {
				tooLong, buf = true, buf[:0]
			} else {
				buf = append(buf, frag...)
			}
		}
		if isPrefix {
			continue
		}
		fn(buf, tooLong)
		buf, tooLong = buf[:0], false
	}
}

// bounded cuts s to at most n bytes for a log line or a status.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// logLimiter lets through at most burst log lines per window, and counts the rest, so that a
// sensor printing garbage in a loop cannot flood the log.
type logLimiter struct {
	mu         sync.Mutex
	burst      int
	window     time.Duration
	start      time.Time
	n          int
	suppressed int
}

// allow reports whether a line may be logged now, and how many were suppressed since the last
// one that was.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window {
		l.start, l.n = now, 0
	}
	if l.n >= l.burst {
		l.suppressed++
		return false, 0
	}
	l.n++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}

// tail keeps the last lines written to it, each bounded, for a status's last error.
type tail struct {
	mu    sync.Mutex
	lines []string
	keep  int
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, bounded(line, 300))
	if len(t.lines) > t.keep {
		t.lines = t.lines[len(t.lines)-t.keep:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b bytes.Buffer
	for i, l := range t.lines {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(l)
	}
	return b.String()
}
