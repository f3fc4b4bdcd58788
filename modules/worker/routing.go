package worker

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

// selectorQueues are the dispatch queues of the selectors this worker's labels satisfy, each
// consumed once, from the worker's start or from the news of its selector until the worker
// stops. Workers without the labels never consume them, so they never see their messages.
type selectorQueues struct {
	mu       sync.Mutex
	g        *errgroup.Group
	ctx      context.Context
	consumed map[string]bool
}

// start makes consumeSelector start subscriptions in g under ctx. Call it before the worker
// consumes its own queue, which brings the news of selectors.
func (s *selectorQueues) start(ctx context.Context, g *errgroup.Group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.g, s.ctx, s.consumed = g, ctx, make(map[string]bool)
}

// consumeSelectorsInUse consumes the queues of the selectors in use now. Call it once the
// worker's own queue exists: a selector put to use after that is announced on it, one in use
// before is in PostgreSQL.
func (m *Module) consumeSelectorsInUse(ctx context.Context) error {
	if len(m.cfg.Labels) == 0 {
		return nil // satisfies no selector
	}
	inUse, err := m.deps.Store.SelectorsInUse(ctx)
	if err != nil {
		return fmt.Errorf("list the worker selectors in use: %w", err)
	}
	for _, s := range inUse {
		m.consumeSelector(ctx, s.Runner, s.Selector)
	}
	return nil
}

// consumeSelector starts consuming the queue of runner and selector when this worker has the
// runner and its labels satisfy the selector, unless it does already.
func (m *Module) consumeSelector(ctx context.Context, runner string, selector store.Labels) {
	if len(selector) == 0 || !slices.Contains(m.cfg.Runners, runner) || !m.cfg.Labels.Satisfy(selector) {
		return
	}
	q := broker.SelectorDispatchQueue(runner, selector.String())
	s := &m.selectors
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.consumed[q.Name] || s.ctx.Err() != nil {
		return
	}
	s.consumed[q.Name] = true
	m.deps.Logger.InfoContext(ctx, "worker consuming the queue of a selector", "worker", m.cfg.Name, "runner", runner,
		"worker_selector", selector.String(), "queue", q.Name)
	sctx := s.ctx
	s.g.Go(func() error {
		return m.deps.Broker.Subscribe(sctx, broker.Subscription{Queue: q, Prefetch: m.cfg.Concurrency}, m.handleDispatch)
	})
}

// handleControl takes what the worker's own queue carries: cancels, and the news of a
// selector put to use.
func (m *Module) handleControl(ctx context.Context, msg broker.Message) error {
	if msg.Type != broker.TypeWorkerSelectorAdded {
		return m.handleCancel(ctx, msg)
	}
	p, err := broker.Decode[broker.WorkerSelectorAdded](msg)
	if err != nil {
		return err
	}
	selector, err := store.ParseLabels(p.WorkerSelector)
	if err != nil {
		return broker.Permanent(fmt.Errorf("worker selector %q: %w", p.WorkerSelector, err))
	}
	m.consumeSelector(ctx, p.Runner, selector)
	return nil
}

// refuseForeign reports why this worker must not run a dispatch of selector (canonical form),
// or nil: only a dispatch meant for labels it lacks (which its queues cannot bring, but for
// two selectors whose names' hashes meet).
func (m *Module) refuseForeign(selector string) error {
	if selector == "" {
		return nil
	}
	sel, err := store.ParseLabels(selector)
	if err != nil {
		return broker.Permanent(fmt.Errorf("worker selector %q: %w", selector, err))
	}
	if !m.cfg.Labels.Satisfy(sel) {
		return fmt.Errorf("worker %s has not the labels %s", m.cfg.Name, selector)
	}
	return nil
}
