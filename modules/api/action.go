package api

import (
	"cmp"
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// actionRequest is an action as a pack's actions/*.yaml file gives it, plus pack_ref. It is
// not pack.Action itself so that the loader's defaults apply to what the body leaves out and
// the loader's file key is refused.
type actionRequest struct {
	Ref            string      `json:"ref"`
	Name           string      `json:"name"`
	PackRef        string      `json:"pack_ref"`
	Label          string      `json:"label"`
	Description    string      `json:"description"`
	RunnerType     string      `json:"runner_type"`
	EntryPoint     string      `json:"entry_point"`
	Parameters     pack.Schema `json:"parameters"`
	OutputFormat   string      `json:"output_format"`
	TimeoutSeconds *int        `json:"timeout_seconds"`
	Enabled        *bool       `json:"enabled"`
	Retry          *pack.Retry `json:"retry"`
	// WorkerSelector names labels a worker must have to run the action.
	WorkerSelector store.Labels `json:"worker_selector"`
}

func (r actionRequest) action() pack.Action {
	a := pack.Action{Ref: r.Ref, Name: r.Name, Label: r.Label, Description: r.Description, RunnerType: r.RunnerType,
		EntryPoint: r.EntryPoint, Parameters: r.Parameters, OutputFormat: cmp.Or(r.OutputFormat, pack.OutputText),
		TimeoutSeconds: pack.DefaultTimeoutSeconds, Enabled: true, Retry: r.Retry, WorkerSelector: r.WorkerSelector}
	if r.TimeoutSeconds != nil {
		a.TimeoutSeconds = *r.TimeoutSeconds
	}
	if r.Enabled != nil {
		a.Enabled = *r.Enabled
	}
	return a
}

func (m *Module) createAction(c echo.Context) error {
	var req actionRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	packRef, err := createIn("action", req.Ref, req.PackRef)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	a, err := m.checkAction(ctx, req.action(), packRef)
	if err != nil {
		return err
	}
	if err := refuseExisting(ctx, m.deps.Store.ActionGetByRef, "action", a.Ref); err != nil {
		return err
	}
	created, err := m.deps.Store.ActionCreate(ctx, a)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "action created", "action", created.Ref)
	return answer(c, http.StatusCreated, created)
}

// updateAction replaces an action's settings whole, as registering its pack again would;
// what the body leaves out takes the file's default. Executions already dispatched keep the
// action as it was (their dispatch carries a snapshot of it). The rules that run it must still
// fit its new parameters: a rule whose literal action_params no longer do is named, and
// nothing changes.
func (m *Module) updateAction(c echo.Context) error {
	var req actionRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	ref := c.Param("ref")
	current, err := m.deps.Store.ActionGetByRef(ctx, ref)
	if err != nil {
		return notFound(err, "no action %q", ref)
	}
	if err := changeable("action", ref, current.PackRef, req.Ref, req.PackRef); err != nil {
		return err
	}
	req.Ref = ref
	// An action read through the API shows its secret defaults and enum values masked;
	// written back so, they keep their values.
	pack.RestoreMaskedSchema(req.Parameters, current.Parameters)
	a, err := m.checkAction(ctx, req.action(), storedPack(current.PackRef))
	if err != nil {
		return err
	}
	if err := m.rulesStillFit(ctx, a); err != nil {
		return err
	}
	updated, err := m.deps.Store.ActionUpdate(ctx, a)
	if err != nil {
		return notFound(err, "no action %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "action updated", "action", updated.Ref)
	return answer(c, http.StatusOK, updated)
}

// deleteAction removes an action no rule uses, with the policies that name it; its executions
// stay.
func (m *Module) deleteAction(c echo.Context) error {
	ctx := c.Request().Context()
	ref := c.Param("ref")
	current, err := m.deps.Store.ActionGetByRef(ctx, ref)
	if err != nil {
		return notFound(err, "no action %q", ref)
	}
	if current.PackRef == pack.CoreRef {
		return coreRefused("action " + ref)
	}
	policies, err := m.deps.Store.ActionDelete(ctx, ref)
	if err != nil {
		return notFound(stillUsed(err, "delete those rules, or point them at another action, first"), "no action %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "action deleted", "action", ref, "policies_deleted", policies)
	return c.NoContent(http.StatusNoContent)
}

// checkAction applies the pack loader's rules to an action of the pack of names, the check that its
// script or workflow definition is in the pack's directory on this server included (and that
// a workflow's tasks run registered actions), and returns it as the store keeps it.
func (m *Module) checkAction(ctx context.Context, a pack.Action, of packOf) (store.Action, error) {
	if err := pack.ValidateAction(&a, of.Ref); err != nil {
		return store.Action{}, invalid(err)
	}
	p, err := m.targetPack(ctx, of)
	if err != nil {
		return store.Action{}, err
	}
	if a.EntryPoint != "" {
		if err := pack.CheckEntryPoint(p.Path, &a); err != nil {
			return store.Action{}, invalid(err)
		}
	}
	if err := pack.CheckWorkflow(ctx, m.deps.Store, a); err != nil {
		return store.Action{}, invalid(err)
	}
	sa, err := pack.StoreAction(a, of.Ref)
	return sa, invalid(err)
}

// rulesStillFit refuses a new parameter schema for action a under which a rule that runs it
// would fail every execution it made.
func (m *Module) rulesStillFit(ctx context.Context, a store.Action) error {
	params, err := pack.StoredSchema(a.Parameters)
	if err != nil {
		return err
	}
	rules, err := m.deps.Store.RuleListByAction(ctx, a.Ref)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if err := pack.CheckActionParams(params, r.ActionParams); err != nil {
			return conflict("rule %s runs action %s and would no longer fit its parameters: %v; change or delete the rule first", r.Ref, a.Ref, err)
		}
	}
	return nil
}
