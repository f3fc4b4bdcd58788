package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// policyRequest is a policy as a pack's policies/*.yaml file gives it. It is not pack.Policy
// itself so that an absent enabled can default to true and the loader's file key is refused.
type policyRequest struct {
	Ref                 string            `json:"ref"`
	Name                string            `json:"name"`
	ActionRef           string            `json:"action_ref"`
	PackRef             string            `json:"pack_ref"`
	Enabled             *bool             `json:"enabled"`
	Concurrency         *pack.Concurrency `json:"concurrency"`
	RateLimit           *pack.RateLimit   `json:"rate_limit"`
	MaxQueueLength      *int              `json:"max_queue_length"`
	QueueTimeoutSeconds *int              `json:"queue_timeout_seconds"`
	Retry               *pack.Retry       `json:"retry"`
	WorkerSelector      store.Labels      `json:"worker_selector"`
}

func (r policyRequest) policy() pack.Policy {
	p := pack.Policy{Ref: r.Ref, Name: r.Name, ActionRef: r.ActionRef, PackRef: r.PackRef, Enabled: true,
		Concurrency: r.Concurrency, RateLimit: r.RateLimit, MaxQueueLength: r.MaxQueueLength, QueueTimeoutSeconds: r.QueueTimeoutSeconds,
		Retry: r.Retry, WorkerSelector: r.WorkerSelector}
	if r.Enabled != nil {
		p.Enabled = *r.Enabled
	}
	return p
}

// policyBody is a policy as the API answers it: the file's shape and where it came from.
type policyBody struct {
	ID int64 `json:"id"`
	pack.Policy
	SourcePack *string   `json:"source_pack"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

func policyOut(sp store.Policy) policyBody {
	return policyBody{ID: sp.ID, Policy: pack.PolicyFromStore(sp), SourcePack: sp.FromPack, Created: sp.Created, Updated: sp.Updated}
}

func (m *Module) listPolicies(c echo.Context) error {
	return listOf(c, func(ctx context.Context, page store.Page) ([]policyBody, int, error) {
		ps, total, err := m.deps.Store.PolicyList(ctx, page)
		out := make([]policyBody, 0, len(ps))
		for _, p := range ps {
			out = append(out, policyOut(p))
		}
		return out, total, err
	})
}

func (m *Module) getPolicy(c echo.Context) error {
	p, err := m.deps.Store.PolicyGet(c.Request().Context(), c.Param("ref"))
	if err != nil {
		return notFound(err, "no policy %q", c.Param("ref"))
	}
	return c.JSON(http.StatusOK, dataBody[policyBody]{Data: policyOut(p)})
}

func (m *Module) createPolicy(c echo.Context) error {
	var req policyRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, err := m.checkPolicy(ctx, req.policy())
	if err != nil {
		return err
	}
	created, err := m.deps.Store.PolicyCreate(ctx, p)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "policy created", "policy", created.Ref)
	return c.JSON(http.StatusCreated, dataBody[policyBody]{Data: policyOut(created)})
}

// updatePolicy replaces a policy's settings whole, as registering a pack again replaces its
// policies; what the body leaves out is unset, not kept.
func (m *Module) updatePolicy(c echo.Context) error {
	var req policyRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	ref := c.Param("ref")
	if req.Ref != "" && req.Ref != ref {
		return badRequest("ref: %q differs from %q in the URL", req.Ref, ref)
	}
	req.Ref = ref
	ctx := c.Request().Context()
	p, err := m.checkPolicy(ctx, req.policy())
	if err != nil {
		return err
	}
	updated, err := m.deps.Store.PolicyUpdate(ctx, ref, p)
	if err != nil {
		return notFound(err, "no policy %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "policy updated", "policy", updated.Ref)
	return c.JSON(http.StatusOK, dataBody[policyBody]{Data: policyOut(updated)})
}

func (m *Module) deletePolicy(c echo.Context) error {
	ctx := c.Request().Context()
	ref := c.Param("ref")
	if err := m.deps.Store.PolicyDelete(ctx, ref); err != nil {
		return notFound(err, "no policy %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "policy deleted", "policy", ref)
	return c.NoContent(http.StatusNoContent)
}

// checkPolicy applies the pack loader's rules, its check that an action_ref names an action
// included: a policy on a misspelt action would silently limit nothing.
func (m *Module) checkPolicy(ctx context.Context, p pack.Policy) (store.Policy, error) {
	if err := pack.ValidatePolicy(&p); err != nil {
		return store.Policy{}, badRequest("%v", err)
	}
	if p.ActionRef != "" {
		_, err := m.deps.Store.ActionGetByRef(ctx, p.ActionRef)
		if errors.Is(err, store.ErrNotFound) {
			return store.Policy{}, badRequest("action_ref: no action %q", p.ActionRef)
		}
		if err != nil {
			return store.Policy{}, err
		}
	}
	return pack.StorePolicy(p), nil
}

// queueStats answers how an action's executions stand in admission: slots in use under the
// limit in force, and who waits.
func (m *Module) queueStats(c echo.Context) error {
	ctx := c.Request().Context()
	action, err := m.deps.Store.ActionGetByRef(ctx, c.Param("ref"))
	if err != nil {
		return notFound(err, "no action %q", c.Param("ref"))
	}
	pol, err := m.deps.Store.PolicyFor(ctx, action.Ref)
	if err != nil {
		return err
	}
	var limit *int
	if pol.ID != 0 {
		limit = pol.ConcurrencyLimit
	}
	st, err := m.deps.Store.QueueStatsGet(ctx, action.Ref, limit)
	if err != nil {
		return err
	}
	return one(c, maskGroups(st, pol.ConcurrencyParameters, action.Parameters), nil)
}

type executionBody struct {
	store.Execution
	// QueuePosition is 1 for the next to be admitted; nil when the execution waits in no queue.
	QueuePosition *int `json:"queue_position"`
	// Attempts lists every attempt of the request this execution belongs to, the first first.
	Attempts []attemptSummary `json:"attempts"`
	// Workflow is a workflow's tasks and variables, once it has started.
	Workflow *store.WorkflowView `json:"workflow,omitempty"`
}

// attemptSummary is one attempt of a request that its action's or policy's retry repeated.
type attemptSummary struct {
	ID         int64      `json:"id"`
	Attempt    int        `json:"attempt"`
	Status     string     `json:"status"`
	Reason     *string    `json:"reason"`
	FinishedAt *time.Time `json:"finished_at"`
}

// getExecution answers one execution with its place in its policy queue, and a workflow's
// tasks and variables; lists leave them out, as they cost queries per execution.
func (m *Module) getExecution(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	e, err := m.deps.Store.ExecutionGet(ctx, id)
	if err != nil {
		return err
	}
	if e, err = m.withRequester(ctx, principalOf(c), e); err != nil {
		return err
	}
	attempts, err := m.deps.Store.ExecutionAttempts(ctx, id)
	if err != nil {
		return err
	}
	body := executionBody{Execution: e, Attempts: make([]attemptSummary, len(attempts))}
	for i, a := range attempts {
		body.Attempts[i] = attemptSummary{ID: a.ID, Attempt: a.Attempt, Status: a.Status, Reason: a.Reason, FinishedAt: a.FinishedAt}
	}
	if body.Workflow, err = m.workflowView(ctx, e); err != nil {
		return err
	}
	// Only a requested execution not yet admitted can wait in a queue.
	if e.Status == store.ExecutionRequested && !e.Admitted {
		if body.QueuePosition, err = m.deps.Store.ExecutionQueuePosition(ctx, id); err != nil {
			return err
		}
	}
	return answer(c, http.StatusOK, body)
}
