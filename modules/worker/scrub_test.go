package worker

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/worker/runner"
)

func TestScrubber(t *testing.T) {
	t.Parallel()
	params := json.RawMessage(`{"token": "tok-123456", "long": "tok-123456-and-more", "quoted": "say \"hi\" now",
		"pin": 98765432, "short": "abc", "cfg": {"inner": "inner-secret"}, "host": "host-name-visible"}`)
	s := newScrubber(params, []string{"token", "long", "quoted", "pin", "short", "cfg", "absent"})

	got := s.result(runner.Result{
		Stdout: "token=tok-123456 long=tok-123456-and-more pin=98765432 short=abc host=host-name-visible\n",
		Stderr: `{"said": "say \"hi\" now"} inner-secret`,
		Error:  "GET https://x/?key=tok-123456: refused",
		Data: map[string]any{"echo": "tok-123456", "list": []any{"inner-secret", json.Number("1")},
			"tok-123456": "a key", "quoted": `say "hi" now`},
	})
	require.Equal(t, "token=******** long=******** pin=******** short=abc host=host-name-visible\n", got.Stdout,
		"the longer secret wins over its prefix; values under 6 bytes and what is not secret stay")
	require.Equal(t, `{"said": "********"} ********`, got.Stderr, "a secret inside a JSON string is found escaped")
	require.Equal(t, "GET https://x/?key=********: refused", got.Error)
	require.Equal(t, map[string]any{"echo": "********", "list": []any{"********", json.Number("1")},
		"********": "a key", "quoted": "********"}, got.Data)

	// Output cut in the middle may have a secret across either end of the cut.
	marker := runner.CutMarker(42)
	cut := s.result(runner.Result{Stdout: "start tok-12" + marker + "3456 end", StdoutTruncated: true,
		StdoutCut: runner.Cut{Head: len("start tok-12"), Marker: len(marker)}, Stderr: "tok-12"})
	require.Equal(t, "start ********"+marker+"******** end", cut.Stdout)
	require.Equal(t, "tok-12", cut.Stderr, "output that was not cut ends where the action stopped")

	// The largest part of any secret at the cut is masked, not the first secret's that shows.
	several := newScrubber(json.RawMessage(`{"a": "wxyz-long-secret", "b": "password", "c": "apricot-key"}`), []string{"a", "b", "c"})
	require.Equal(t, "log: ********", several.maskCutEnd("log: passw"), "not log: pass********")
	require.Equal(t, "log: ********", several.maskCutEnd("log: wxyz-long-secre"))
	require.Equal(t, "******** rest", several.maskCutStart("t-key rest"), "not ********-key rest")
	require.Equal(t, "******** end", several.maskCutStart("sword end"))
	require.Equal(t, "log: plain", several.maskCutEnd("log: plain"))

	require.Nil(t, newScrubber(params, nil), "no secrets: nothing to do")
	require.Nil(t, newScrubber(params, []string{"short", "host_absent"}), "nothing long enough to scrub")
	plain := runner.Result{Stdout: "tok-123456"}
	require.Equal(t, plain, (*scrubber)(nil).result(plain))
}
