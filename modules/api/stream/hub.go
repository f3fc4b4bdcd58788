// Package stream fans the notifications every process publishes out to one api replica's
// live-stream clients, each with its filters, never moving an execution's status backwards
// and never letting a slow client hold up the others.
package stream

import (
	"cmp"
	"container/list"
	"errors"
	"slices"
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
	// RecentBytes and RecentChunks bound what is kept of each running execution's latest
	// output, replayed to a client that starts following it late. Default 64 KiB, 256.
	RecentBytes, RecentChunks int
	// RecentTotal bounds the memory the kept output takes across executions, its text and
	// what each chunk and each execution costs besides (chunkOverhead, recentOverhead), and
	// RecentExecutions how many executions' output is kept; past either, that of the execution
	// that printed least lately is forgotten. Default 16 MiB, 4096.
	RecentTotal, RecentExecutions int
}

// What a kept chunk and a kept execution cost besides the chunk's text, rounded up: a chunk's
// notification and its OutputChunk; an execution's entry in the map and the list, and its
// slice. Counted in RecentTotal, so that chunks without text are not free.
const (
	chunkOverhead  = 256
	recentOverhead = 256
)

// Filter narrows what a client receives; zero fields match everything. A filter on
// executions excludes events.
type Filter struct {
	// ExecutionID keeps one execution's changes and its inquiry's and, for a workflow, its
	// tasks' executions' and their inquiries'.
	ExecutionID int64
	ActionRef   string
	// Output adds what the executions matched print (off: their statuses alone).
	Output bool
}

func (f Filter) match(n broker.Notification) bool {
	switch n.Kind {
	case broker.NotifyExecution:
		return (f.ExecutionID == 0 || f.ExecutionID == n.ID || n.Workflow != nil && f.ExecutionID == *n.Workflow) &&
			(f.ActionRef == "" || f.ActionRef == n.Ref)
	case broker.NotifyInquiry:
		return (f.ExecutionID == 0 || f.ExecutionID == n.Execution || n.Workflow != nil && f.ExecutionID == *n.Workflow) &&
			(f.ActionRef == "" || f.ActionRef == n.Ref)
	case broker.NotifyOutput:
		return f.Output && (f.ExecutionID == 0 || f.ExecutionID == n.ID || n.Workflow != nil && f.ExecutionID == *n.Workflow) &&
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
	// recent is the latest output of each execution that has printed and not yet ended, as
	// far as this replica heard, as elements of lru: the one that printed most lately in
	// front. recentCost is what they take, as RecentTotal counts it.
	recent     map[int64]*list.Element
	lru        *list.List // of *recentOutput
	recentCost int
}

// recentOutput is what one execution printed lately.
type recentOutput struct {
	id     int64
	chunks []broker.Notification
	bytes  int // of text
}

// cost is what r takes, as RecentTotal counts it.
func (r *recentOutput) cost() int {
	return recentOverhead + len(r.chunks)*chunkOverhead + r.bytes
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
	cfg.RecentBytes = cmp.Or(cfg.RecentBytes, 64<<10)
	cfg.RecentChunks = cmp.Or(cfg.RecentChunks, 256)
	cfg.RecentTotal = cmp.Or(cfg.RecentTotal, 16<<20)
	cfg.RecentExecutions = cmp.Or(cfg.RecentExecutions, 4096)
	return &Hub{cfg: cfg, clients: make(map[*Client]struct{}), seen: make(map[int64]change),
		recent: make(map[int64]*list.Element), lru: list.New()}
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

// Subscribe adds a client with filter f; it fails with ErrClosed once the hub has closed. A
// client of one execution's output gets what the hub keeps of it first (and of a workflow's,
// its tasks'), as far as its buffer holds: each chunk's number tells what came before it.
func (h *Hub) Subscribe(f Filter) (*Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	c := &Client{hub: h, filter: f, ch: make(chan broker.Notification, h.cfg.Buffer), done: make(chan struct{})}
	h.clients[c] = struct{}{}
	if f.Output && f.ExecutionID != 0 {
		h.replay(c)
	}
	return c, nil
}

// replay gives c the kept output its filter matches. h.mu must be held.
func (h *Hub) replay(c *Client) {
	for e := h.lru.Front(); e != nil; e = e.Next() {
		for _, n := range e.Value.(*recentOutput).chunks {
			if !c.filter.match(n) {
				break // one execution's chunks all match or none does
			}
			select {
			case c.ch <- n:
			default:
				return
			}
		}
	}
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
		switch n.Kind {
		case broker.NotifyExecution:
			if !h.advance(&n) {
				continue
			}
			if store.IsTerminal(n.Status) {
				h.forget(n.ID)
			}
		case broker.NotifyOutput:
			h.remember(n)
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

// remember keeps output n of its execution, within the bounds, or forgets the execution's
// when n is its last chunk: nothing more of it comes, and a client that starts following it
// now gets its stored output when it ends. Only a last chunk or an ending status forgets an
// execution's output before the bounds do, and either may be lost on the way: the bounds keep
// what such losses leave from adding up. h.mu must be held.
func (h *Hub) remember(n broker.Notification) {
	if n.Output.End || n.Output.Cut {
		h.forget(n.ID)
		return
	}
	e, was := h.recent[n.ID], 0
	if e == nil {
		e = h.lru.PushFront(&recentOutput{id: n.ID})
		h.recent[n.ID] = e
	} else {
		h.lru.MoveToFront(e)
		was = e.Value.(*recentOutput).cost()
	}
	r := e.Value.(*recentOutput)
	r.chunks = append(r.chunks, n)
	r.bytes += n.Bytes()
	k, freed := 0, 0
	for ; len(r.chunks)-k > h.cfg.RecentChunks || r.bytes-freed > h.cfg.RecentBytes && k < len(r.chunks)-1; k++ {
		freed += r.chunks[k].Bytes()
	}
	r.chunks = slices.Delete(r.chunks, 0, k)
	r.bytes -= freed
	h.recentCost += r.cost() - was
	for h.recentCost > h.cfg.RecentTotal || h.lru.Len() > h.cfg.RecentExecutions {
		h.forget(h.lru.Back().Value.(*recentOutput).id)
	}
}

// forget drops the output kept of execution id. h.mu must be held.
func (h *Hub) forget(id int64) {
	if e, ok := h.recent[id]; ok {
		h.recentCost -= e.Value.(*recentOutput).cost()
		h.lru.Remove(e)
		delete(h.recent, id)
	}
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
