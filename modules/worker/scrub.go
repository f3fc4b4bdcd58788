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
	// first marks the bytes a value starts with, so that scrubbing a stream skips the rest
	// quickly.
	first [256]bool
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
	s := &scrubber{values: found, replacer: strings.NewReplacer(pairs...)}
	for _, v := range found {
		s.first[v[0]] = true
	}
	return s
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
// key) of the parsed data. Output cut in the middle may have a secret across either end of
// the cut; what shows of it there is masked too.
func (s *scrubber) result(r runner.Result) runner.Result {
	if s == nil {
		return r
	}
	r.Stdout = s.text(r.Stdout, r.StdoutCut)
	r.Stderr = s.text(r.Stderr, r.StderrCut)
	r.Error = s.replacer.Replace(r.Error)
	r.Data = s.data(r.Data)
	return r
}

func (s *scrubber) text(t string, cut runner.Cut) string {
	if cut.Marker == 0 || cut.Head+cut.Marker > len(t) {
		return s.replacer.Replace(t)
	}
	head, marker, tail := t[:cut.Head], t[cut.Head:cut.Head+cut.Marker], t[cut.Head+cut.Marker:]
	head, tail = s.replacer.Replace(head), s.replacer.Replace(tail)
	return s.maskCutEnd(head) + marker + s.maskCutStart(tail)
}

// maskCutEnd masks the start of a secret that t, cut after it, ends with: the longest such
// start of any secret, so that no part of a longer one shows because a shorter one matched
// first.
func (s *scrubber) maskCutEnd(t string) string {
	if k := s.cutOverlap(func(v string, k int) bool { return strings.HasSuffix(t, v[:k]) }); k > 0 {
		return t[:len(t)-k] + pack.Mask
	}
	return t
}

// maskCutStart masks the end of a secret that t, cut before it, starts with: the longest such
// end of any secret.
func (s *scrubber) maskCutStart(t string) string {
	if k := s.cutOverlap(func(v string, k int) bool { return strings.HasPrefix(t, v[len(v)-k:]) }); k > 0 {
		return pack.Mask + t[k:]
	}
	return t
}

// cutOverlap is the largest k, short of a whole value, for which shows(v, k) holds of some
// secret value v: how many bytes of a secret show at a cut.
func (s *scrubber) cutOverlap(shows func(v string, k int) bool) int {
	best := 0
	for _, v := range s.values {
		for k := len(v) - 1; k > best; k-- {
			if shows(v, k) {
				best = k
				break
			}
		}
	}
	return best
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

// streamScrub scrubs an output as it is printed, write by write, as the scrubber's replacer
// would scrub it whole: what could be the start of a secret value is held back until what
// follows tells, so that a value printed across two writes is masked all the same. It also
// holds back a UTF-8 character split between writes, so that each piece is valid text.
type streamScrub struct {
	s    *scrubber // nil: nothing to scrub
	held []byte
}

// write appends to dst what can be shown of the output so far, p being its next bytes; end
// says no more follows, so nothing is held back.
func (z *streamScrub) write(dst, p []byte, end bool) []byte {
	data := p
	if len(z.held) > 0 {
		data = append(z.held, p...)
	}
	dst = slices.Grow(dst, len(data))
	limit := len(data)
	if !end {
		limit = runner.CompleteRunes(data)
	}
	i := 0
	for i < limit {
		j := i
		for j < limit && (z.s == nil || !z.s.first[data[j]]) {
			j++
		}
		dst = append(dst, data[i:j]...)
		if i = j; i == limit {
			break
		}
		matched, wait := z.s.match(data[i:], end)
		switch {
		case wait:
			limit = i
		case matched > 0:
			dst = append(dst, pack.Mask...)
			i += matched
		default:
			dst = append(dst, data[i])
			i++
		}
	}
	z.held = append(z.held[:0], data[i:]...)
	return dst
}

// match reports the length of the longest secret value that rest starts with, or that rest
// may be the start of a longer one than any it starts with, so must wait for what follows;
// complete says nothing follows rest.
func (s *scrubber) match(rest []byte, complete bool) (matched int, wait bool) {
	for _, v := range s.values { // longest first, as the replacer prefers them
		if len(rest) >= len(v) {
			if string(rest[:len(v)]) == v {
				return len(v), false
			}
		} else if !complete && strings.HasPrefix(v, string(rest)) {
			return 0, true
		}
	}
	return 0, false
}
