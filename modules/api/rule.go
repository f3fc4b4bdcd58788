package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// The rule matcher and the timers follow every write here at once: the rule table's trigger
// advances attune.component_version, which the matcher reads for each event, and notifies the
// channel the timers listen on.

// ruleRequest is a rule as a pack's rules/*.yaml file gives it, plus pack_ref.
type ruleRequest struct {
	Ref           string         `json:"ref"`
	Name          string         `json:"name"`
	PackRef       string         `json:"pack_ref"`
	Label         string         `json:"label"`
	Description   string         `json:"description"`
	TriggerRef    string         `json:"trigger_ref"`
	TriggerParams map[string]any `json:"trigger_params"`
	Conditions    any            `json:"conditions"`
	ActionRef     string         `json:"action_ref"`
	ActionParams  map[string]any `json:"action_params"`
	Enabled       *bool          `json:"enabled"`
}

func (r ruleRequest) rule() pack.Rule {
	out := pack.Rule{Ref: r.Ref, Name: r.Name, Label: r.Label, Description: r.Description, TriggerRef: r.TriggerRef,
		TriggerParams: r.TriggerParams, Conditions: r.Conditions, ActionRef: r.ActionRef, ActionParams: r.ActionParams, Enabled: true}
	if r.Enabled != nil {
		out.Enabled = *r.Enabled
	}
	return out
}

func (m *Module) createRule(c echo.Context) error {
	var req ruleRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	packRef, err := createIn("rule", req.Ref, req.PackRef)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	r, err := m.checkRule(ctx, req.rule(), packRef)
	if err != nil {
		return err
	}
	if err := refuseExisting(ctx, m.deps.Store.RuleGetByRef, "rule", r.Ref); err != nil {
		return err
	}
	created, err := m.deps.Store.RuleCreate(ctx, r)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "rule created", "rule", created.Ref, "enabled", created.Enabled)
	return answer(c, http.StatusCreated, created)
}

// updateRule replaces a rule's settings whole, as registering its pack again would: what the
// body leaves out takes the file's default, enabled included.
func (m *Module) updateRule(c echo.Context) error {
	var req ruleRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	ref := c.Param("ref")
	current, err := m.deps.Store.RuleGetByRef(ctx, ref)
	if err != nil {
		return notFound(err, "no rule %q", ref)
	}
	if err := changeable("rule", ref, current.PackRef, req.Ref, req.PackRef); err != nil {
		return err
	}
	req.Ref = ref
	// A rule read through the API shows its secret action_params masked; written back so,
	// they keep their values.
	var currentParams map[string]any
	if err := json.Unmarshal(current.ActionParams, &currentParams); err != nil {
		return fmt.Errorf("decode action_params of rule %s: %w", ref, err)
	}
	pack.RestoreMasked(req.ActionParams, currentParams, pack.SecretNames(current.ActionParameters))
	r, err := m.checkRule(ctx, req.rule(), storedPack(current.PackRef))
	if err != nil {
		return err
	}
	updated, err := m.deps.Store.RuleUpdate(ctx, r)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "rule updated", "rule", updated.Ref, "enabled", updated.Enabled)
	return answer(c, http.StatusOK, updated)
}

func (m *Module) enableRule(c echo.Context) error  { return m.setRuleEnabled(c, true) }
func (m *Module) disableRule(c echo.Context) error { return m.setRuleEnabled(c, false) }

// setRuleEnabled is idempotent: enabling an enabled rule answers it as it is.
func (m *Module) setRuleEnabled(c echo.Context, enabled bool) error {
	ctx := c.Request().Context()
	ref := c.Param("ref")
	r, err := m.deps.Store.RuleSetEnabled(ctx, ref, enabled)
	if err != nil {
		return notFound(err, "no rule %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "rule enabled set", "rule", ref, "enabled", enabled)
	return answer(c, http.StatusOK, r)
}

// deleteRule removes a rule; its enforcements, and the executions they caused, stay.
func (m *Module) deleteRule(c echo.Context) error {
	ctx := c.Request().Context()
	ref := c.Param("ref")
	if err := m.deps.Store.RuleDelete(ctx, ref); err != nil {
		return notFound(err, "no rule %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "rule deleted", "rule", ref)
	return c.NoContent(http.StatusNoContent)
}

// checkRule applies what loading and registering a pack check of a rule, to a rule of the pack
// of names, and returns it as the store keeps it.
func (m *Module) checkRule(ctx context.Context, r pack.Rule, of packOf) (store.Rule, error) {
	if err := pack.ValidateRule(&r, of.Ref); err != nil {
		return store.Rule{}, invalid(err)
	}
	if _, err := m.targetPack(ctx, of); err != nil {
		return store.Rule{}, err
	}
	if err := pack.CheckRule(ctx, m.deps.Store, r); err != nil {
		return store.Rule{}, invalid(err)
	}
	sr, err := pack.StoreRule(r, of.Ref)
	return sr, invalid(err)
}
