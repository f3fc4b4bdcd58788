package broker

import "strings"

// Meter counts the messages a process publishes and consumes, for its metrics; Options.Meter
// nil counts nothing. It is called on the hot path, so it must not block.
type Meter interface {
	// Published counts a message of type t the broker took.
	Published(t Type)
	// Queue returns the counters of the deliveries of one kind of queue (QueueKind). A
	// subscription asks once, so that counting a delivery looks nothing up.
	Queue(kind string) QueueMeter
}

// QueueMeter counts one kind of queue's deliveries.
type QueueMeter interface {
	// Consumed counts a delivery handed to a handler (or dead-lettered unread).
	Consumed()
	// Redelivered counts a delivery that is not its message's first: requeued after a
	// failed handler, or handed back by the broker after a consumer was lost.
	Redelivered()
	// DeadLettered counts a delivery rejected into the dead-letter exchange.
	DeadLettered()
}

// QueueKind is a queue's name without the part that names one process (an api replica's
// stream queue, a worker's cancel queue) or one worker selector, so that what is counted by
// queue keeps one series per kind of queue however often processes restart.
func QueueKind(name string) string {
	switch {
	case strings.HasPrefix(name, "attune.stream."):
		return "attune.stream"
	case strings.HasPrefix(name, "attune.worker.") && strings.HasSuffix(name, ".cancel"):
		return "attune.worker.cancel"
	case strings.HasPrefix(name, "attune.workers.") && strings.Contains(name, "-sel-"):
		runner, _, _ := strings.Cut(strings.TrimPrefix(name, "attune.workers."), "-sel-")
		return "attune.workers." + runner + "-sel.dispatch"
	}
	return name
}

// redelivered reports whether a delivery is an adapter's second or later of its message.
type redelivered interface{ Redelivered() bool }

type noMeter struct{}

func (noMeter) Published(Type)          {}
func (noMeter) Queue(string) QueueMeter { return noMeter{} }
func (noMeter) Consumed()               {}
func (noMeter) Redelivered()            {}
func (noMeter) DeadLettered()           {}
