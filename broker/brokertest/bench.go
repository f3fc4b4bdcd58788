package brokertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/attune-go/attune/broker"
)

// BenchPublishConsume measures the round trip through an adapter: b.N persistent messages
// published by 4 goroutines in batches of 50 (each batch waits for its confirms), consumed
// by one subscription with prefetch 64 that acks each. It reports messages per second end
// to end.
func BenchPublishConsume(b *testing.B, br broker.Broker) {
	const publishers, batch = 4, 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var received sync.WaitGroup
	received.Add(b.N)
	subDone := make(chan error, 1)
	go func() {
		subDone <- br.Subscribe(ctx, broker.Subscription{Queue: broker.QueueExecutorCompletions, Prefetch: 64},
			func(context.Context, broker.Message) error { received.Done(); return nil })
	}()
	msgs := make([]broker.Message, b.N)
	for i := range msgs {
		m, err := broker.NewMessage(broker.ExecutionCompleted{ExecutionID: int64(i), ActionRef: "core.noop", Status: "completed", FinishedAt: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p * batch; i < len(msgs); i += publishers * batch {
				end := min(i+batch, len(msgs))
				if err := br.Publish(ctx, msgs[i:end]...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	received.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	cancel()
	if err := <-subDone; err != nil {
		b.Fatal(err)
	}
}
