package membroker

import (
	"context"
	"strings"
	"sync"
)

type item struct {
	routingKey string
	body       []byte
	// redelivered marks an item a stopping consumer handed back unsettled.
	redelivered bool
}

// queue is a FIFO of items with a broadcast wake-up for waiting consumers.
type queue struct {
	name string
	// deadLetters says whether rejected items go to the dead-letter exchange; the dead-letter
	// queue itself drops what it rejects, as RabbitMQ does without a DLX.
	deadLetters bool

	mu    sync.Mutex
	items []item
	wake  chan struct{}
}

func newQueue(name string, deadLetters bool) *queue {
	return &queue{name: name, deadLetters: deadLetters, wake: make(chan struct{})}
}

func (q *queue) push(it item) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.signal()
	q.mu.Unlock()
}

// pushFront returns a delivered but unsettled item to the head, as RabbitMQ requeues an
// unacknowledged message near its original position.
func (q *queue) pushFront(it item) {
	q.mu.Lock()
	q.items = append([]item{it}, q.items...)
	q.signal()
	q.mu.Unlock()
}

// signal wakes every waiter; q.mu must be held.
func (q *queue) signal() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// pop takes the head item, waiting for one until ctx ends.
func (q *queue) pop(ctx context.Context) (item, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			it := q.items[0]
			q.items[0] = item{}
			q.items = q.items[1:]
			q.mu.Unlock()
			return it, true
		}
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return item{}, false
		}
	}
}

// topicMatch reports whether key matches an AMQP topic pattern: words are separated by '.',
// '*' stands for exactly one word and '#' for zero or more.
func topicMatch(pattern, key string) bool {
	return matchWords(strings.Split(pattern, "."), strings.Split(key, "."))
}

func matchWords(pattern, key []string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case "#":
			if len(pattern) == 1 {
				return true
			}
			for i := 0; i <= len(key); i++ {
				if matchWords(pattern[1:], key[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(key) == 0 {
				return false
			}
		default:
			if len(key) == 0 || key[0] != pattern[0] {
				return false
			}
		}
		pattern, key = pattern[1:], key[1:]
	}
	return len(key) == 0
}
