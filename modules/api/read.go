package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// listOf answers a list endpoint: parse the page, fetch it, wrap it in the envelope.
func listOf[T any](c echo.Context, fetch func(ctx context.Context, page store.Page) ([]T, int, error)) error {
	p, err := parsePage(c)
	if err != nil {
		return err
	}
	items, total, err := fetch(c.Request().Context(), p.store())
	if err != nil {
		return err
	}
	for i := range items {
		items[i] = masked(items[i])
	}
	return c.JSON(http.StatusOK, listResponse(items, p, total))
}

// one answers a single-object endpoint.
func one[T any](c echo.Context, v T, err error) error {
	if err != nil {
		return err
	}
	return answer(c, http.StatusOK, v)
}

type dataBody[T any] struct {
	Data T `json:"data"`
}

func idParam(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, badRequest("invalid id %q: want a positive whole number", c.Param("id"))
	}
	return id, nil
}

func (m *Module) listPacks(c echo.Context) error { return listOf(c, m.deps.Store.PackList) }

// packWithVersions is a pack with its stored versions, newest first.
type packWithVersions struct {
	store.Pack
	Versions []store.PackVersion `json:"versions"`
}

func (m *Module) getPack(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := m.deps.Store.PackGetByRef(ctx, c.Param("ref"))
	if err != nil {
		return notFound(err, "no pack %q", c.Param("ref"))
	}
	versions, err := m.deps.Store.PackVersionList(ctx, p.Ref)
	if err != nil {
		return err
	}
	return answer(c, http.StatusOK, packWithVersions{Pack: p, Versions: versions})
}

func (m *Module) listActions(c echo.Context) error {
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.Action, int, error) {
		return m.deps.Store.ActionList(ctx, c.QueryParam("pack"), page)
	})
}

func (m *Module) getAction(c echo.Context) error {
	a, err := m.deps.Store.ActionGetByRef(c.Request().Context(), c.Param("ref"))
	return one(c, a, notFound(err, "no action %q", c.Param("ref")))
}

func (m *Module) listTriggers(c echo.Context) error {
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.Trigger, int, error) {
		return m.deps.Store.TriggerList(ctx, c.QueryParam("pack"), page)
	})
}

func (m *Module) getTrigger(c echo.Context) error {
	t, err := m.deps.Store.TriggerGetByRef(c.Request().Context(), c.Param("ref"))
	return one(c, t, notFound(err, "no trigger %q", c.Param("ref")))
}

func (m *Module) listRules(c echo.Context) error {
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.Rule, int, error) {
		return m.deps.Store.RuleList(ctx, c.QueryParam("pack"), page)
	})
}

func (m *Module) getRule(c echo.Context) error {
	r, err := m.deps.Store.RuleGetByRef(c.Request().Context(), c.Param("ref"))
	return one(c, r, notFound(err, "no rule %q", c.Param("ref")))
}

func (m *Module) listEvents(c echo.Context) error {
	f := store.EventFilter{TriggerRef: c.QueryParam("trigger_ref")}
	var err error
	if f.Window, err = createdWindow(c); err != nil {
		return err
	}
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.Event, int, error) {
		return m.deps.Store.EventList(ctx, f, page)
	})
}

func (m *Module) getEvent(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	e, err := m.deps.Store.EventGet(c.Request().Context(), id)
	return one(c, e, notFound(err, "no event %d", id))
}

func (m *Module) listEnforcements(c echo.Context) error {
	f := store.EnforcementFilter{RuleRef: c.QueryParam("rule_ref")}
	var err error
	if f.Window, err = createdWindow(c); err != nil {
		return err
	}
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.Enforcement, int, error) {
		return m.deps.Store.EnforcementList(ctx, f, page)
	})
}

func (m *Module) getEnforcement(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	e, err := m.deps.Store.EnforcementGet(c.Request().Context(), id)
	return one(c, e, notFound(err, "no enforcement %d", id))
}

func (m *Module) listExecutions(c echo.Context) error {
	f := store.ExecutionFilter{Status: c.QueryParam("status"), ActionRef: c.QueryParam("action_ref"), RuleRef: c.QueryParam("rule_ref")}
	if f.Status != "" && !validStatus(f.Status) {
		return badRequest("invalid status %q: want one of %v", f.Status, store.ExecutionStatuses)
	}
	if raw := c.QueryParam("parent"); raw != "" {
		parent, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || parent < 1 {
			return badRequest("invalid parent %q: want an execution id, a positive whole number", raw)
		}
		f.ParentID = &parent
	}
	var err error
	if f.RequestedBy, err = requestedByFilter(c); err != nil {
		return err
	}
	if p := principalOf(c); p.Role != Admin {
		// Others than admins filter by their own tokens alone, as they see only those, and
		// learn nothing of which logins exist.
		f.RequestedBy = f.RequestedBy.RequestedOnlyBy(p.IdentityID)
	}
	if f.Window, err = createdWindow(c); err != nil {
		return err
	}
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.Execution, int, error) {
		execs, total, err := m.deps.Store.ExecutionList(ctx, f, page)
		if errors.Is(err, store.ErrUnknownRequester) {
			return nil, 0, badRequest("%v", err)
		}
		if err != nil {
			return nil, 0, err
		}
		return execs, total, m.withRequesters(ctx, principalOf(c), execs)
	})
}

// createdWindow reads ?since= (inclusive) and ?until= (exclusive), RFC 3339 times bounding
// when what a list holds was created.
func createdWindow(c echo.Context) (store.Window, error) {
	var w store.Window
	for _, bound := range []struct {
		name string
		into **time.Time
	}{{"since", &w.Since}, {"until", &w.Until}} {
		raw := c.QueryParam(bound.name)
		if raw == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return store.Window{}, badRequest("invalid %s %q: want an RFC 3339 time such as 2026-11-23T09:00:00Z", bound.name, raw)
		}
		*bound.into = &at
	}
	return w, nil
}

func validStatus(s string) bool {
	for _, v := range store.ExecutionStatuses {
		if v == s {
			return true
		}
	}
	return false
}
