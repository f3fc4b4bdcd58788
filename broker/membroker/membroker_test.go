package membroker

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/brokertest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	brokertest.Run(t, func(t *testing.T, opts broker.Options) broker.Broker {
		b := New(opts)
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}

func TestTopicMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, key string
		want         bool
	}{
		{"event.created", "event.created", true},
		{"event.created", "event.deleted", false},
		{"execution.dispatch.*", "execution.dispatch.w1", true},
		{"execution.dispatch.*", "execution.dispatch", false},
		{"execution.dispatch.*", "execution.dispatch.w1.x", false},
		{"#", "anything.at.all", true},
		{"#", "", true},
		{"execution.#", "execution", true},
		{"execution.#", "execution.status.changed", true},
		{"#.changed", "execution.status.changed", true},
		{"*.status.#", "execution.status", true},
		{"*.status.#", "status", false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, topicMatch(c.pattern, c.key), "%q ~ %q", c.pattern, c.key)
	}
}

func BenchmarkPublishConsume(b *testing.B) {
	br := New(broker.Options{})
	defer br.Close()
	brokertest.BenchPublishConsume(b, br)
}
