package runner

import (
	"bytes"
	"math/rand/v2"
	"testing"

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

// A cut never begins the tail in the middle of a UTF-8 character.
func TestHeadTailBufferCutsBetweenCharacters(t *testing.T) {
	t.Parallel()
	b := newHeadTailBuffer(200)
	_, _ = b.Write(bytes.Repeat([]byte("é"), 500))
	out, cut := b.output()
	require.True(t, b.truncated())
	require.Equal(t, "é", out[cut.Head+cut.Marker:][:2])
}
