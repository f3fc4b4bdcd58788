package worker

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/worker/runner"
)

// minScrubbed is the length, in bytes, of the shortest secret value scrubbed from results.
// Actions echo their inputs, so a result is scrubbed of exact occurrences of its secret
// values; a shorter value would garble ordinary output (a PIN of 42 would mask every "42")
// for little gain. Buildkite draws the same line.
const minScrubbed = 6

// scrubber replaces exact occurrences of an execution's secret values with pack.Mask.
type scrubber struct {
	values   []string // longest first, so that a secret wins over another that is its prefix
	replacer *strings.Replacer
}

// newScrubber returns the scrubber of the secret parameters named in secrets and of the
// texts in also (what the worker opened, the action's API token), or nil when there is
// nothing to scrub. params is the execution's parameters as the action gets them, opened.
func newScrubber(params json.RawMessage, secrets []string, also ...string) *scrubber {
	var found []string
	for _, t := range also {
		found = appendSecretText(found, t)
	}
	var values map[string]any
	if len(secrets) > 0 && json.Unmarshal(params, &values) == nil {
		for _, name := range secrets {
			if v, ok := values[name]; ok {
				found = appendSecretText(found, v)
			}
		}
	}
	found = slices.DeleteFunc(found, func(s string) bool { return len(s) < minScrubbed })
	if len(found) == 0 {
		return nil
	}
	slices.SortFunc(found, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	found = slices.Compact(found)
	pairs := make([]string, 0, 2*len(found))
	for _, s := range found {
		pairs = append(pairs, s, pack.Mask)
	}
	return &scrubber{values: found, replacer: strings.NewReplacer(pairs...)}
}

// appendSecretText appends the forms in which a secret value may show up in an action's
// output: a string as it is and as it reads inside a JSON string, a number as the
// environment gives it to the action, and every such leaf of an object or array.
func appendSecretText(out []string, v any) []string {
	switch x := v.(type) {
	case string:
		out = append(out, x)
		if escaped := jsonEscaped(x); escaped != x {
			out = append(out, escaped)
		}
	case float64:
		out = append(out, strconv.FormatFloat(x, 'f', -1, 64))
	case map[string]any:
		for _, e := range x {
			out = appendSecretText(out, e)
		}
	case []any:
		for _, e := range x {
			out = appendSecretText(out, e)
		}
	}
	return out
}

// jsonEscaped is s as it reads between the quotes of a JSON string.
func jsonEscaped(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return s
	}
	out := strings.TrimSuffix(buf.String(), "\n")
	return out[1 : len(out)-1]
}

// result scrubs what a worker records of a run: the output, the error, and every string (and
// key) of the parsed data. Output cut at the size limit may end in the first part of a
// secret; that part is masked too.
func (s *scrubber) result(r runner.Result) runner.Result {
	if s == nil {
		return r
	}
	r.Stdout = s.text(r.Stdout, r.StdoutTruncated)
	r.Stderr = s.text(r.Stderr, r.StderrTruncated)
	r.Error = s.text(r.Error, false)
	r.Data = s.data(r.Data)
	return r
}

func (s *scrubber) text(t string, truncated bool) string {
	t = s.replacer.Replace(t)
	if !truncated {
		return t
	}
	for _, v := range s.values {
		for k := len(v) - 1; k > 0; k-- {
			if strings.HasSuffix(t, v[:k]) {
				return t[:len(t)-k] + pack.Mask
			}
		}
	}
	return t
}

func (s *scrubber) data(v any) any {
	switch x := v.(type) {
	case string:
		return s.replacer.Replace(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[s.replacer.Replace(k)] = s.data(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = s.data(e)
		}
		return out
	}
	return v
}
