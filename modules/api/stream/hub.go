// Package stream fans the notifications every process publishes out to one api replica's
// live-stream clients, each with its filters, never moving an execution's status backwards
// and never letting a slow client hold up the others.
package stream

import (
	"cmp"
	"errors"
	"sync"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

// ErrTooSlow ends a client that fell more than Config.Buffer notifications behind.
var ErrTooSlow = errors.New("the client fell too far behind the live stream")

// ErrClosed ends every client when the hub closes (the server is stopping).
var ErrClosed = errors.New("the live stream is closed")

// Config tunes a Hub.
type Config struct {
	// Buffer is how many notifications a client may have waiting before it is cut off with
	// ErrTooSlow. Default 1024.
	Buffer int
	// Remember is how many executions' last statuses are kept to recognise a stale one: once
	// that many have changed since, an execution is forgotten (it will long have ended).
	// Default 100000.
	Remember int
}

// Filter narrows what a client receives; zero fields match everything. A filter on
// executions excludes events.
type Filter struct {
	// ExecutionID keeps one execution's changes and its inquiry's and, for a workflow, its
	// tasks' executions' and their inquiries'.
	ExecutionID int64
	ActionRef   string
}

func (f Filter) match(n broker.Notification) bool {
	switch n.Kind {
	case broker.NotifyExecution:
		return (f.ExecutionID == 0 || f.ExecutionID == n.ID || n.Workflow != nil && f.ExecutionID == *n.Workflow) &&
			(f.ActionRef == "" || f.ActionRef == n.Ref)
	case broker.NotifyInquiry:
		return (f.ExecutionID == 0 || f.ExecutionID == n.Execution || n.Workflow != nil && f.ExecutionID == *n.Workflow) &&
			(f.ActionRef == "" || f.ActionRef == n.Ref)
	case broker.NotifyEvent:
		return f.ExecutionID == 0 && f.ActionRef == ""
	}
	return false
}

// Hub holds one replica's clients and the last status it passed on for each execution.
type Hub struct {
	cfg Config

	mu      sync.Mutex
	clients map[*Client]struct{}
	closed  bool
	// seen and older are two generations of the last change passed on per execution: when
	// seen is full it becomes older and a new one starts, so memory stays bounded and an
	// execution is forgotten only after Remember others have changed.
	seen, older map[int64]change
}

// change is the status an execution reached, and when.
type change struct {
	status string
	at     time.Time
}

// NewHub returns an open hub.
func NewHub(cfg Config) *Hub {
	cfg.Buffer = cmp.Or(cfg.Buffer, 1024)
	cfg.Remember = cmp.Or(cfg.Remember, 100000)
	return &Hub{cfg: cfg, clients: make(map[*Client]struct{}), seen: make(map[int64]change)}
}

// Client is one subscriber: it reads Notifications until Done is closed.
type Client struct {
	hub    *Hub
	filter Filter
	ch     chan broker.Notification
	done   chan struct{}
	err    error // why done was closed; written before the close
}

// Notifications delivers what matches the client's filter, in the order the hub passed it on.
func (c *Client) Notifications() <-chan broker.Notification { return c.ch }

// Done is closed when the client is cut off (Err says why) or has closed.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err reports why Done was closed: ErrTooSlow, ErrClosed, or nil after Close. It waits for
// Done.
func (c *Client) Err() error {
	<-c.done
	return c.err
}

// Close unsubscribes the client.
func (c *Client) Close() {
	c.hub.mu.Lock()
	defer c.hub.mu.Unlock()
	c.hub.drop(c, nil)
}

// Subscribe adds a client with filter f; it fails with ErrClosed once the hub has closed.
func (h *Hub) Subscribe(f Filter) (*Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	c := &Client{hub: h, filter: f, ch: make(chan broker.Notification, h.cfg.Buffer), done: make(chan struct{})}
	h.clients[c] = struct{}{}
	return c, nil
}

// Deliver passes a batch on to every client whose filter matches. A status that cannot follow
// the one last passed on for its execution (at or below its rank, but for a late result that
// replaces abandoned, and a workflow's later move among running, pausing and paused) is stale
// (batches from different processes arrive in any order) and dropped; a previous status left
// unknown by the sender
// is filled from the one last passed on. Deliver never blocks: a client whose buffer is full
// is cut off.
func (h *Hub) Deliver(batch []broker.Notification) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, n := range batch {
		if n.Kind == broker.NotifyExecution && !h.advance(&n) {
			continue
		}
		for c := range h.clients {
			if !c.filter.match(n) {
				continue
			}
			select {
			case c.ch <- n:
			default:
				h.drop(c, ErrTooSlow)
			}
		}
	}
}

// advance records n's status as its execution's latest, and reports false, recording nothing,
// when it is not newer than the latest already passed on. h.mu must be held.
func (h *Hub) advance(n *broker.Notification) bool {
	last, known := h.seen[n.ID]
	if !known {
		last, known = h.older[n.ID]
	}
	if known && !store.ExecutionStatusNewer(last.status, last.at, n.Status, n.At) {
		return false
	}
	if known && n.PreviousStatus == "" {
		n.PreviousStatus = last.status
	}
	if len(h.seen) >= h.cfg.Remember {
		h.older, h.seen = h.seen, make(map[int64]change, len(h.seen))
	}
	h.seen[n.ID] = change{n.Status, n.At}
	return true
}

// drop removes c with err as its reason, once. h.mu must be held.
func (h *Hub) drop(c *Client, err error) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	c.err = err
	close(c.done)
}

// Close cuts every client off with ErrClosed and refuses new ones, so that open streams end
// and a server's graceful shutdown does not wait on them.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		h.drop(c, ErrClosed)
	}
}
