package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A url's bucket holds its burst, refills at the rate up to the burst again, and says how
// long until the next token; each url has its own.
func TestWebhookBuckets(t *testing.T) {
	t.Parallel()
	require.Nil(t, newBuckets(WebhookRate{}), "no rate, no buckets")
	wait, ok := (*buckets)(nil).take("a", time.Now())
	require.True(t, ok)
	require.Zero(t, wait)

	bs := newBuckets(WebhookRate{PerSecond: 2, Burst: 3})
	now := time.Unix(1000, 0)
	for range 3 {
		_, ok := bs.take("a", now)
		require.True(t, ok)
	}
	wait, ok = bs.take("a", now)
	require.False(t, ok)
	require.Equal(t, 500*time.Millisecond, wait)
	_, ok = bs.take("b", now)
	require.True(t, ok, "another url")

	_, ok = bs.take("a", now.Add(500*time.Millisecond))
	require.True(t, ok, "one token back after 1/rate")
	_, ok = bs.take("a", now.Add(500*time.Millisecond))
	require.False(t, ok)
	for range 3 {
		_, ok = bs.take("a", now.Add(time.Hour))
		require.True(t, ok, "refilled to the burst, no more")
	}
	_, ok = bs.take("a", now.Add(time.Hour))
	require.False(t, ok)

	bs.dropFull(now.Add(2 * time.Hour))
	require.Empty(t, bs.byURL, "full buckets are forgotten")
}
