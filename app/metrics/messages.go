package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/attune-go/attune/broker"
)

// messages implements broker.Meter.
type messages struct {
	published    *prometheus.CounterVec
	consumed     *prometheus.CounterVec
	redelivered  *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	byType       map[broker.Type]prometheus.Counter
}

func newMessages(reg *prometheus.Registry) messages {
	byQueue := func(name, help string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"queue"}))
	}
	m := messages{
		published: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attune_messages_published_total",
			Help: "Messages this process published and the broker took, by message type.",
		}, []string{"type"})),
		consumed: byQueue("attune_messages_consumed_total", "Deliveries this process's subscriptions handled, by queue."),
		redelivered: byQueue("attune_messages_redelivered_total",
			"Deliveries that were not their message's first (requeued after a failed handler, or handed back from a lost consumer), by queue."),
		deadLettered: byQueue("attune_messages_dead_lettered_total", "Deliveries this process rejected into the dead-letter exchange, by queue."),
		byType:       make(map[broker.Type]prometheus.Counter),
	}
	for _, t := range broker.Types() {
		m.byType[t] = m.published.WithLabelValues(string(t))
	}
	return m
}

// Published implements broker.Meter. Every type routes (broker.Types), so the lookup never
// misses; the map is only read after New.
func (m *messages) Published(t broker.Type) {
	if c, ok := m.byType[t]; ok {
		c.Inc()
	}
}

// Queue implements broker.Meter.
func (m *messages) Queue(kind string) broker.QueueMeter {
	return queueMeter{
		consumed:     m.consumed.WithLabelValues(kind),
		redelivered:  m.redelivered.WithLabelValues(kind),
		deadLettered: m.deadLettered.WithLabelValues(kind),
	}
}

type queueMeter struct {
	consumed, redelivered, deadLettered prometheus.Counter
}

func (q queueMeter) Consumed()     { q.consumed.Inc() }
func (q queueMeter) Redelivered()  { q.redelivered.Inc() }
func (q queueMeter) DeadLettered() { q.deadLettered.Inc() }
