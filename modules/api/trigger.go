package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// triggerRequest is a trigger as a pack's triggers/*.yaml file gives it, plus pack_ref.
type triggerRequest struct {
	Ref         string      `json:"ref"`
	Name        string      `json:"name"`
	PackRef     string      `json:"pack_ref"`
	Label       string      `json:"label"`
	Description string      `json:"description"`
	Parameters  pack.Schema `json:"parameters"`
	Output      pack.Schema `json:"output"`
}

func (r triggerRequest) trigger() pack.Trigger {
	return pack.Trigger{Ref: r.Ref, Name: r.Name, Label: r.Label, Description: r.Description, Parameters: r.Parameters, Output: r.Output}
}

func (m *Module) createTrigger(c echo.Context) error {
	var req triggerRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	packRef, err := createIn("trigger", req.Ref, req.PackRef)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, err := m.checkTrigger(ctx, req.trigger(), packRef)
	if err != nil {
		return err
	}
	if err := refuseExisting(ctx, m.deps.Store.TriggerGetByRef, "trigger", t.Ref); err != nil {
		return err
	}
	created, err := m.deps.Store.TriggerCreate(ctx, t)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "trigger created", "trigger", created.Ref)
	return c.JSON(http.StatusCreated, dataBody[store.Trigger]{Data: created})
}

// updateTrigger replaces a trigger's settings whole. The rules on it must still fit its new
// parameter schema: a rule whose trigger_params no longer do is named, and nothing changes.
func (m *Module) updateTrigger(c echo.Context) error {
	var req triggerRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	ref := c.Param("ref")
	current, err := m.deps.Store.TriggerGetByRef(ctx, ref)
	if err != nil {
		return notFound(err, "no trigger %q", ref)
	}
	if err := changeable("trigger", ref, current.PackRef, req.Ref, req.PackRef); err != nil {
		return err
	}
	req.Ref = ref
	t, err := m.checkTrigger(ctx, req.trigger(), storedPack(current.PackRef))
	if err != nil {
		return err
	}
	params, err := pack.StoredSchema(t.Parameters)
	if err != nil {
		return err
	}
	rules, err := m.deps.Store.RuleListByTrigger(ctx, ref)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if err := pack.CheckTriggerParams(params, r.TriggerParams); err != nil {
			return conflict("rule %s uses trigger %s and would no longer fit its parameters: %v; change or delete the rule first", r.Ref, ref, err)
		}
	}
	updated, err := m.deps.Store.TriggerUpdate(ctx, t)
	if err != nil {
		return notFound(err, "no trigger %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "trigger updated", "trigger", updated.Ref)
	return c.JSON(http.StatusOK, dataBody[store.Trigger]{Data: updated})
}

// deleteTrigger removes a trigger no rule or sensor uses; its events stay.
func (m *Module) deleteTrigger(c echo.Context) error {
	ctx := c.Request().Context()
	ref := c.Param("ref")
	current, err := m.deps.Store.TriggerGetByRef(ctx, ref)
	if err != nil {
		return notFound(err, "no trigger %q", ref)
	}
	if current.PackRef == pack.CoreRef {
		return coreRefused("trigger " + ref)
	}
	if err := m.deps.Store.TriggerDelete(ctx, ref); err != nil {
		return notFound(stillUsed(err, "delete those, or point them at another trigger, first"), "no trigger %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "trigger deleted", "trigger", ref)
	return c.NoContent(http.StatusNoContent)
}

// checkTrigger applies the pack loader's rules to a trigger of the pack of names and returns it as
// the store keeps it.
func (m *Module) checkTrigger(ctx context.Context, t pack.Trigger, of packOf) (store.Trigger, error) {
	if err := pack.ValidateTrigger(&t, of.Ref); err != nil {
		return store.Trigger{}, invalid(err)
	}
	if _, err := m.targetPack(ctx, of); err != nil {
		return store.Trigger{}, err
	}
	st, err := pack.StoreTrigger(t, of.Ref)
	return st, invalid(err)
}
