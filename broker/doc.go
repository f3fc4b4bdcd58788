// Package broker defines how Attune's roles talk to each other: typed messages in one
// envelope, a routing table that maps each message type to its exchange and routing key,
// the topology every adapter declares, and the small Publisher and Subscriber contract that
// the AMQP and in-process adapters implement.
//
// Delivery is at least once. A Handler's returned error decides what happens to a message:
// nil acknowledges it, an error wrapped with Permanent dead-letters it, and any other error
// requeues it with an incremented retry count until MaxAttempts is reached, after which it is
// dead-lettered too. Handlers must therefore be idempotent.
package broker
