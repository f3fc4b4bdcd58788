package broker

import (
	"fmt"
	"slices"
	"strings"
)

// Type names a kind of message; it is the message_type of the envelope.
type Type string

// The message types. Each has exactly one route in routes.
const (
	TypeEventCreated             Type = "EventCreated"
	TypeEnforcementCreated       Type = "EnforcementCreated"
	TypeExecutionRequested       Type = "ExecutionRequested"
	TypeExecutionDispatched      Type = "ExecutionDispatched"
	TypeExecutionCompleted       Type = "ExecutionCompleted"
	TypeExecutionCancelRequested Type = "ExecutionCancelRequested"
	TypeNotificationCreated      Type = "NotificationCreated"
	TypeWorkerSelectorAdded      Type = "WorkerSelectorAdded"
)

// Exchanges. All are durable topic exchanges.
const (
	ExchangeEvents        = "attune.events"
	ExchangeExecutions    = "attune.executions"
	ExchangeNotifications = "attune.notifications"
	// ExchangeDeadLetter receives every rejected message with its original routing key.
	ExchangeDeadLetter = "attune.dlx"
)

// Exchanges lists the exchanges every adapter declares, dead-letter exchange included.
var Exchanges = []string{ExchangeEvents, ExchangeExecutions, ExchangeNotifications, ExchangeDeadLetter}

// Route is where a message is published.
type Route struct {
	Exchange   string
	RoutingKey string
}

type routeSpec struct {
	exchange string
	key      string
	// targeted routes append "."+target to key: one queue per recipient.
	targeted bool
	// bestEffort types are sent transient and not mandatory; see Type.BestEffort.
	bestEffort bool
}

// routes is the single routing table. Publishing and queue bindings both read it, so a type
// can never be published under a key that its consumers' queues are not bound to.
var routes = map[Type]routeSpec{
	TypeEventCreated:             {exchange: ExchangeEvents, key: "event.created"},
	TypeEnforcementCreated:       {exchange: ExchangeExecutions, key: "enforcement.created"},
	TypeExecutionRequested:       {exchange: ExchangeExecutions, key: "execution.requested"},
	TypeExecutionDispatched:      {exchange: ExchangeExecutions, key: "execution.dispatch", targeted: true},
	TypeExecutionCompleted:       {exchange: ExchangeExecutions, key: "execution.completed"},
	TypeExecutionCancelRequested: {exchange: ExchangeExecutions, key: "execution.cancel", targeted: true},
	TypeNotificationCreated:      {exchange: ExchangeNotifications, key: "notification.created", bestEffort: true},
	TypeWorkerSelectorAdded:      {exchange: ExchangeExecutions, key: "worker.selector.added"},
}

// BestEffort reports whether messages of type t may be lost: they are sent transient (not
// written to disk, so a broker restart loses them) and not mandatory (one that no queue is
// bound for is dropped without an error). Nothing but a live view may depend on them; every
// other type is persistent, and unroutable is an error. Publishers still wait for the
// broker's confirm, which is what paces a sender that batches.
func (t Type) BestEffort() bool { return routes[t].bestEffort }

// Types returns every message type in a stable order.
func Types() []Type {
	ts := make([]Type, 0, len(routes))
	for t := range routes {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// RouteOf resolves the exchange and routing key of a message type. Targeted types need a
// target, which must be a single routing-key word; untargeted types must not have one.
func RouteOf(t Type, target string) (Route, error) {
	spec, ok := routes[t]
	if !ok {
		return Route{}, fmt.Errorf("route %q: unknown message type", t)
	}
	if !spec.targeted {
		if target != "" {
			return Route{}, fmt.Errorf("route %s: type takes no target, got %q", t, target)
		}
		return Route{Exchange: spec.exchange, RoutingKey: spec.key}, nil
	}
	if err := validTarget(target); err != nil {
		return Route{}, fmt.Errorf("route %s: %w", t, err)
	}
	return Route{Exchange: spec.exchange, RoutingKey: spec.key + "." + target}, nil
}

// Route resolves where m is published.
func (m Message) Route() (Route, error) {
	return RouteOf(m.Type, m.Target)
}

func validTarget(target string) error {
	if target == "" {
		return fmt.Errorf("target is required")
	}
	if strings.ContainsAny(target, ".*# \t\n") {
		return fmt.Errorf("target %q must be one routing-key word (no '.', '*', '#' or spaces)", target)
	}
	return nil
}
