package api

import (
	"context"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// listAudit answers GET /audit: who changed what, newest first. Admins alone read it: it
// names every identity's actions and tokens.
func (m *Module) listAudit(c echo.Context) error {
	f := store.AuditFilter{Actor: c.QueryParam("actor"), Kind: c.QueryParam("kind")}
	if f.Kind != "" && !store.ValidAuditKind(f.Kind) {
		return badRequest("invalid kind %q: want a noun such as rule, or a kind such as rule.update", f.Kind)
	}
	if object := c.QueryParam("object"); object != "" {
		f.ObjectKind, f.Object, _ = strings.Cut(object, ":")
		if f.ObjectKind == "" {
			return badRequest("invalid object %q: want KIND or KIND:REF, such as rule:demo.every_second or execution:42", object)
		}
	}
	var err error
	if f.Window, err = createdWindow(c); err != nil {
		return err
	}
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.AuditEntry, int, error) {
		return m.deps.Store.AuditList(ctx, f, page)
	})
}

// withRequesters sets on each execution who or what requested it.
func (m *Module) withRequesters(ctx context.Context, execs []store.Execution) error {
	if len(execs) == 0 {
		return nil
	}
	ids := make([]int64, len(execs))
	for i, e := range execs {
		ids[i] = e.ID
	}
	found, err := m.deps.Store.ExecutionRequesters(ctx, ids)
	if err != nil {
		return err
	}
	for i, e := range execs {
		if r, ok := found[e.ID]; ok {
			execs[i].Requester = &r
		}
	}
	return nil
}

// withRequester is withRequesters for one execution.
func (m *Module) withRequester(ctx context.Context, e store.Execution) (store.Execution, error) {
	one := []store.Execution{e}
	err := m.withRequesters(ctx, one)
	return one[0], err
}

// requestedByFilter reads ?requested_by= (store.ParseRequestedBy).
func requestedByFilter(c echo.Context) (store.RequestedByFilter, error) {
	raw := c.QueryParam("requested_by")
	if raw == "" {
		return store.RequestedByFilter{}, nil
	}
	f, err := store.ParseRequestedBy(raw)
	if err != nil {
		return f, badRequest("%v", err)
	}
	return f, nil
}
