package runner

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// Whatever the sizes of the writes, the buffer keeps exactly the first half of its limit and
// the last bytes that fit after the marker, which counts the bytes between them.
func TestHeadTailBufferKeepsStartAndEnd(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		limit := 100 + rng.IntN(400)
		var all []byte
		b := newHeadTailBuffer(limit)
		for range rng.IntN(40) {
			p := make([]byte, rng.IntN(3*limit/2))
			for i := range p {
				p[i] = 'a' + byte(rng.IntN(26))
			}
			all = append(all, p...)
			n, err := b.Write(p)
			require.NoError(t, err)
			require.Equal(t, len(p), n)
		}
		out, cut := b.output()
		if len(all) <= limit {
			require.False(t, b.truncated())
			require.Equal(t, string(all), out)
			require.Zero(t, cut)
			continue
		}
		require.True(t, b.truncated())
		require.LessOrEqual(t, len(out), limit)
		head := limit / 2
		require.Equal(t, Cut{Head: head, Marker: cut.Marker}, cut)
		tail := max(limit-head-cutMarkerRoom, 0)
		require.Equal(t, string(all[:head])+CutMarker(int64(len(all)-head-tail))+string(all[len(all)-tail:]), out)
	}
}

// A cut never ends the head nor begins the tail in the middle of a UTF-8 character, whatever
// the characters' widths and the limit, and the marker counts what the head gave up too.
func TestHeadTailBufferCutsBetweenCharacters(t *testing.T) {
	t.Parallel()
	for _, char := range []string{"é", "€", "𝄞"} {
		for limit := 200; limit < 208; limit++ {
			all := bytes.Repeat([]byte(char), 500)
			b := newHeadTailBuffer(limit)
			_, _ = b.Write(all)
			out, cut := b.output()
			require.True(t, b.truncated())
			require.True(t, utf8.ValidString(out), "%s at limit %d: %q", char, limit, out)
			head, tail := out[:cut.Head], out[cut.Head+cut.Marker:]
			require.Equal(t, CutMarker(int64(len(all)-len(head)-len(tail))), out[cut.Head:cut.Head+cut.Marker])
		}
	}
}

// The buffer grows with what is written: a short output costs a short buffer, not the limit.
func TestHeadTailBufferAllocatesWhatItHolds(t *testing.T) {
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	got := allocated(func() {
		for range 100 {
			b := newHeadTailBuffer(1 << 20)
			_, _ = b.Write([]byte("ok\n"))
			_, _ = b.output()
		}
	})
	require.Less(t, got, uint64(100*64<<10), "100 short outputs under a 1 MiB limit")
}
