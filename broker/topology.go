package broker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// DeadLetterQueue is bound to ExchangeDeadLetter with "#", so it holds every rejected message
// under its original routing key.
var DeadLetterQueue = Queue{Name: "attune.dead_letters", DeadLetters: true}

// Queue describes a queue by the message types routed into it; its bindings are derived from
// the routing table rather than spelled out, so they cannot drift from the publishers.
type Queue struct {
	Name  string
	Types []Type
	// Target fills in targeted types' routing keys (the worker a per-worker queue belongs to).
	Target string
	// Transient queues belong to one process (a live stream fan-out): they are exclusive to
	// their connection and vanish with it. All other queues are durable.
	Transient bool
	// DeadLetters marks the queue bound to the dead-letter exchange; it takes no Types.
	DeadLetters bool
	// Expires deletes the queue once it has had no consumer for this long (zero: never).
	Expires time.Duration
}

// Binding ties a queue to an exchange under a routing-key pattern.
type Binding struct {
	Exchange   string
	RoutingKey string
}

// Bindings derives q's bindings from the routing table.
func (q Queue) Bindings() ([]Binding, error) {
	if q.Name == "" {
		return nil, fmt.Errorf("queue has no name")
	}
	if q.DeadLetters {
		return []Binding{{Exchange: ExchangeDeadLetter, RoutingKey: "#"}}, nil
	}
	if len(q.Types) == 0 {
		return nil, fmt.Errorf("queue %s: no message types", q.Name)
	}
	bs := make([]Binding, 0, len(q.Types))
	for _, t := range q.Types {
		target := ""
		if routes[t].targeted {
			target = q.Target
		}
		r, err := RouteOf(t, target)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", q.Name, err)
		}
		bs = append(bs, Binding(r))
	}
	return bs, nil
}

// The shared work queues. Every process declares them when it connects, so a message
// published before its consumer role has started waits in its queue instead of being lost.
var (
	QueueRuleEvents          = Queue{Name: "attune.rules.events", Types: []Type{TypeEventCreated}}
	QueueExecutorEnforcement = Queue{Name: "attune.executor.enforcements", Types: []Type{TypeEnforcementCreated}}
	QueueExecutorRequests    = Queue{Name: "attune.executor.requests", Types: []Type{TypeExecutionRequested}}
	QueueExecutorCompletions = Queue{Name: "attune.executor.completions", Types: []Type{TypeExecutionCompleted}}
)

// SharedQueues lists the durable queues every adapter declares on connect.
var SharedQueues = []Queue{DeadLetterQueue, QueueRuleEvents, QueueExecutorEnforcement, QueueExecutorRequests, QueueExecutorCompletions}

// WorkerQueueExpiry is how long a worker's own queue outlives its last consumer. Worker names
// change with every process by default, so without an expiry every restart would leave a
// queue behind for good. A dead worker's cancel queue holds nothing worth keeping: the
// executions it would stop were abandoned with the worker.
const WorkerQueueExpiry = time.Hour

// DispatchQueue is the durable queue from which every worker that has runner takes the
// executions that runner runs. Workers share it: the broker hands each one as many as its
// prefetch allows, so a busy worker is given nothing more and a worker that dies unacked
// gives its share back to the others.
func DispatchQueue(runner string) Queue {
	return Queue{Name: "attune.workers." + runner + ".dispatch", Types: []Type{TypeExecutionDispatched}, Target: runner}
}

// SelectorDispatchQueue is the durable queue of the executions of runner that only workers
// with the labels of selector may run (selector in canonical form: "k=v,k2=v2", keys sorted).
// Only such workers consume it, so the others never see its messages; while none is up, the
// executions wait in it. Its name holds a hash of the selector, which may be long.
func SelectorDispatchQueue(runner, selector string) Queue {
	target := dispatchTarget(runner, selector)
	return Queue{Name: "attune.workers." + target + ".dispatch", Types: []Type{TypeExecutionDispatched}, Target: target}
}

// dispatchTarget is the routing-key word of a dispatch: the runner, or the runner and a hash
// of its selector. Runner names hold no '-' (modules/pack), so the two cannot meet.
func dispatchTarget(runner, selector string) string {
	if selector == "" {
		return runner
	}
	sum := sha256.Sum256([]byte(selector))
	return runner + "-sel-" + hex.EncodeToString(sum[:8])
}

// WorkerCancelQueue carries cancellations to one worker, and the news of a selector in use to
// every worker. It is apart from the dispatch queue so that neither waits behind a backlog of
// dispatches.
func WorkerCancelQueue(worker string) Queue {
	return Queue{Name: "attune.worker." + worker + ".cancel", Types: []Type{TypeExecutionCancelRequested, TypeWorkerSelectorAdded},
		Target: worker, Expires: WorkerQueueExpiry}
}

// Namespace prefixes exchange and queue names so that several Attune installations, or
// parallel tests, can share one broker without seeing each other's messages. The empty
// namespace leaves names as they are.
type Namespace string

// Name returns name inside the namespace.
func (ns Namespace) Name(name string) string {
	if ns == "" {
		return name
	}
	return string(ns) + "." + name
}

// StreamQueue is one api replica's own queue for its live stream: every replica sees every
// notification, wherever the change was made.
func StreamQueue(replica string) Queue {
	return Queue{
		Name:      "attune.stream." + replica,
		Types:     []Type{TypeNotificationCreated},
		Transient: true,
	}
}
