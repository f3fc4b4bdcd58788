package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// queues is a QueueReader that counts its reads, each held until release is closed.
type queues struct {
	reads   atomic.Int64
	release chan struct{}
}

func (q *queues) AdmissionQueues(ctx context.Context, _ int) ([]store.ActionQueue, error) {
	q.reads.Add(1)
	select {
	case <-q.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []store.ActionQueue{{ActionRef: "core.local", Queued: 3}}, nil
}

// Scrapes, however many come at once, read the policy queues once per period, and each gets
// the figures.
func TestQueuesReadOncePerPeriod(t *testing.T) {
	t.Parallel()
	q := &queues{release: make(chan struct{})}
	close(q.release)
	c := newQueueCollector(q, slog.New(slog.DiscardHandler))
	var now atomic.Pointer[time.Time]
	clock := func(at time.Time) { now.Store(&at) }
	clock(time.Now())
	c.now = func() time.Time { return *now.Load() }
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	scrape := func() {
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				families, err := reg.Gather()
				if err != nil || len(families) != 1 || families[0].GetName() != "attune_policy_queue_length" {
					t.Errorf("scrape: %v, %v", families, err)
				}
			})
		}
		wg.Wait()
	}
	scrape()
	require.Equal(t, int64(1), q.reads.Load(), "100 scrapes at once read the queues once")
	clock(now.Load().Add(queuesFresh - time.Millisecond))
	scrape()
	require.Equal(t, int64(1), q.reads.Load(), "nor again within the period")
	clock(now.Load().Add(time.Millisecond))
	scrape()
	require.Equal(t, int64(2), q.reads.Load(), "once the period is over, once more")
}

// The handler serves a few scrapes at once and answers the rest 503 at once, rather than let
// them pile up.
func TestHandlerBoundsScrapesInFlight(t *testing.T) {
	t.Parallel()
	q := &queues{release: make(chan struct{})}
	m := New()
	m.WatchQueues(q, slog.New(slog.DiscardHandler))
	server := httptest.NewServer(m.Handler(slog.New(slog.DiscardHandler)))
	t.Cleanup(server.Close)

	const scrapes = 3 * maxScrapesInFlight
	var refused, served atomic.Int64
	var wg sync.WaitGroup
	for range scrapes {
		wg.Go(func() {
			resp, err := http.Get(server.URL)
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusServiceUnavailable:
				refused.Add(1)
			case http.StatusOK:
				served.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return refused.Load() == scrapes-maxScrapesInFlight }, 10*time.Second, time.Millisecond,
		"while the queues are being read, the scrapes past the bound are refused")
	close(q.release)
	wg.Wait()
	require.Equal(t, int64(maxScrapesInFlight), served.Load())
	require.Equal(t, int64(1), q.reads.Load())
}
