package sensor

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLineChecker(t *testing.T) {
	c, err := newLineChecker([]string{"p.tick", "p.gone"}, map[string]json.RawMessage{"p.tick": json.RawMessage(`{"n": {"type": "integer", "required": true}}`)})
	require.NoError(t, err)
	ev, err := c.check([]byte(`{"trigger": "p.tick", "payload": {"n": 3, "extra": "kept"}}`))
	require.NoError(t, err)
	require.Equal(t, "p.tick", ev.Trigger)
	require.JSONEq(t, `{"n": 3, "extra": "kept"}`, string(ev.Payload))

	for line, reason := range map[string]string{
		`not json`: "not a JSON object",
		`{"trigger": "p.tick", "payload": {}} {}`:             "more than one JSON value",
		`{"payload": {"n": 1}}`:                               "trigger: required",
		`{"trigger": "q.other", "payload": {}}`:               `"q.other" is not one of the sensor's trigger_refs`,
		`{"trigger": "p.gone", "payload": {}}`:                `no trigger "p.gone" is registered`,
		`{"trigger": "p.tick", "payload": [1]}`:               "payload: want a JSON object",
		`{"trigger": "p.tick", "payload": {"n": "x"}}`:        `payload: field "n"`,
		`{"trigger": "p.tick"}`:                               `payload: field "n": required`,
		`{"trigger": "p.tick", "payload": {"n": 1}, "at": 2}`: `unknown field "at"`,
	} {
		_, err := c.check([]byte(line))
		require.ErrorContains(t, err, reason, line)
	}
}

func TestReadLinesSkipsLongLines(t *testing.T) {
	input := "first\n" + strings.Repeat("x", maxLine+10) + "\nlast"
	var got []string
	require.NoError(t, readLines(strings.NewReader(input), func(line []byte, tooLong bool) {
		if tooLong {
			got = append(got, "(too long)")
			return
		}
		got = append(got, string(line))
	}))
	require.Equal(t, []string{"first", "(too long)", "last"}, got)
}

func TestLogLimiter(t *testing.T) {
	l := &logLimiter{burst: 2, window: time.Minute}
	now := time.Now()
	for i, want := range []bool{true, true, false, false} {
		ok, _ := l.allow(now)
		require.Equal(t, want, ok, i)
	}
	ok, suppressed := l.allow(now.Add(time.Minute))
	require.True(t, ok)
	require.Equal(t, 2, suppressed)
}
