package api

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Callers arriving while a read runs share the one read that follows it: two reads for any
// number of callers, and nobody answered with a reading that began before it asked.
func TestCoalescedReadsAreSharedAndFresh(t *testing.T) {
	var c coalesced[int64]
	var reads atomic.Int64
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	read := func() (int64, error) {
		n := reads.Add(1)
		started <- struct{}{}
		<-release
		return n, nil
	}

	first := make(chan int64)
	go func() {
		v, err := c.get(context.Background(), read)
		require.NoError(t, err)
		first <- v
	}()
	<-started // the first read runs; everyone below asks after it began

	const late = 50
	var wg sync.WaitGroup
	answers := make(chan int64, late)
	for range late {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.get(context.Background(), read)
			require.NoError(t, err)
			answers <- v
		}()
	}
	// Every late caller is queued for the next reading before the first one ends.
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.next != nil && c.next.waiting == late
	}, 10*time.Second, time.Millisecond)

	close(release)
	require.Equal(t, int64(1), <-first)
	wg.Wait()
	close(answers)
	for v := range answers {
		require.Equal(t, int64(2), v, "a late caller got a reading that began before it asked")
	}
	require.Equal(t, int64(2), reads.Load())

	// Idle again: the next caller reads afresh.
	v, err := c.get(context.Background(), read)
	require.NoError(t, err)
	require.Equal(t, int64(3), v)
}

// A caller that gives up does not stop the reading; the next caller still gets one that
// began after it asked.
func TestCoalescedCallerGivesUp(t *testing.T) {
	var c coalesced[int64]
	var reads atomic.Int64
	release := make(chan struct{})
	read := func() (int64, error) {
		n := reads.Add(1)
		if n == 1 {
			<-release
		}
		return n, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := c.get(ctx, read)
		done <- err
	}()
	require.Eventually(t, func() bool { return reads.Load() == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	close(release)
	v, err := c.get(context.Background(), read)
	require.NoError(t, err)
	require.Equal(t, int64(2), v, "answered with the reading that began before it asked")
}

// A read that panics answers its callers with an error, and the next caller reads again.
func TestCoalescedReadPanics(t *testing.T) {
	var c coalesced[int]
	_, err := c.get(context.Background(), func() (int, error) { panic("boom") })
	require.ErrorContains(t, err, "boom")
	v, err := c.get(context.Background(), func() (int, error) { return 5, nil })
	require.NoError(t, err)
	require.Equal(t, 5, v)
}
