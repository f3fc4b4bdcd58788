package store

import (
	"context"
	"sync"
)

// NOTIFY channels that triggers in the schema signal when a table changes, for replicas that
// cache what it holds.
const (
	ChannelRulesChanged   = "attune_rules_changed"
	ChannelActionsChanged = "attune_actions_changed"
)

// RefCache keeps rows by ref for as long as a listener on their change channel says nothing
// changed: feed Invalidate to Listen. While nobody listens it caches nothing, since a change
// could go unnoticed.
type RefCache[T any] struct {
	load func(ctx context.Context, ref string) (T, error)

	mu         sync.Mutex
	items      map[string]T
	listening  bool
	generation uint64 // bumped by every invalidation, so a load that raced one is not kept
}

// NewRefCache returns a cache that loads misses with load.
func NewRefCache[T any](load func(ctx context.Context, ref string) (T, error)) *RefCache[T] {
	return &RefCache[T]{load: load, items: make(map[string]T)}
}

// Get returns the row called ref, from the cache when it can be trusted.
func (c *RefCache[T]) Get(ctx context.Context, ref string) (T, error) {
	return c.GetWith(ctx, ref, c.load)
}

// GetWith is Get loading a miss with load: inside a transaction, a load must go through the
// transaction's connection, as one taken from the pool may never come while transactions
// waiting on the same lock hold the rest.
func (c *RefCache[T]) GetWith(ctx context.Context, ref string, load func(ctx context.Context, ref string) (T, error)) (T, error) {
	c.mu.Lock()
	if v, ok := c.items[ref]; ok {
		c.mu.Unlock()
		return v, nil
	}
	gen := c.generation
	c.mu.Unlock()
	v, err := load(ctx, ref)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.listening && c.generation == gen {
		c.items[ref] = v
	}
	c.mu.Unlock()
	return v, nil
}

// Invalidate drops everything; listening says whether changes are being watched from now on.
func (c *RefCache[T]) Invalidate(listening bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.items)
	c.generation++
	c.listening = listening
}

// Drop forgets everything cached, without changing whether changes are watched: for a cache
// that learned by other means than its channel that it is behind.
func (c *RefCache[T]) Drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.items)
	c.generation++
}

// ComponentWatch drops caches of rules, actions and policies when attune.component_version
// has moved since it last looked. A NOTIFY arrives some time after the change it announces
// commits, so a message handled in between would otherwise meet the components as they were:
// Check before reading the caches for a message.
type ComponentWatch struct {
	version func(ctx context.Context) (int64, error)
	caches  []interface{ Drop() }

	// mu makes the drop and the count it answers one step: handlers that read the same
	// count at once (one read serves many when reads coalesce) must not pass the one that
	// is dropping and read the caches before they are dropped.
	mu   sync.Mutex
	seen int64
}

// NewComponentWatch watches the count version reads (Queries.ComponentVersion) for caches.
func NewComponentWatch(version func(ctx context.Context) (int64, error), caches ...interface{ Drop() }) *ComponentWatch {
	return &ComponentWatch{version: version, caches: caches}
}

// Check drops the caches if the count moved. What is loaded after it includes every change
// committed before it read the count; a later change moves the count again and is caught by
// the next Check.
func (w *ComponentWatch) Check(ctx context.Context) error {
	current, err := w.version(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if current > w.seen {
		w.seen = current
		for _, c := range w.caches {
			c.Drop()
		}
	}
	return nil
}
