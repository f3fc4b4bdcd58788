package amqpbroker

import (
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// QueueType is the type of the durable queues the adapter declares.
type QueueType string

const (
	// QueueClassic queues live on one node: the default, for a single RabbitMQ.
	QueueClassic QueueType = "classic"
	// QueueQuorum queues are replicated over a cluster's nodes (Raft) and survive the loss of
	// a minority of them; they work on a single node too.
	QueueQuorum QueueType = "quorum"
)

// ParseQueueType reads classic or quorum.
func ParseQueueType(s string) (QueueType, error) {
	t := QueueType(s)
	return t, t.validate()
}

func (t QueueType) validate() error {
	if t != QueueClassic && t != QueueQuorum {
		return fmt.Errorf("invalid queue type %q: want classic or quorum", string(t))
	}
	return nil
}

// ErrQueueTypeMismatch is reported when a queue exists with another type than the one asked
// for: RabbitMQ never changes a queue's type, so the process cannot start until the queue
// is deleted or another namespace is used.
var ErrQueueTypeMismatch = errors.New("queue exists with another type")

// declareError says what to do when RabbitMQ refuses a declaration because the queue exists
// with another type; other errors it wraps as they are.
func (b *Broker) declareError(name string, err error) error {
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.PreconditionFailed || !strings.Contains(amqpErr.Reason, "x-queue-type") {
		return fmt.Errorf("declare queue %s: %w", name, err)
	}
	existing := QueueClassic
	if strings.Contains(amqpErr.Reason, "current is the value 'quorum'") {
		existing = QueueQuorum
	}
	return fmt.Errorf("declare queue %s: %w: it is a %s queue and %s was asked for; use queue type %s, "+
		"or delete the queue once it is drained (rabbitmqctl delete_queue %s), or use another namespace (%w)",
		name, ErrQueueTypeMismatch, existing, b.cfg.QueueType, existing, name, err)
}
