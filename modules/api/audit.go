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

// withRequesters sets on each execution who or what requested it, as reader may see it: the
// name of the API token a request came with only to an admin or to whoever requested it (a
// token's name is the admin's business, as the audit and the identities are; the requester's
// login stays for all to see).
func (m *Module) withRequesters(ctx context.Context, reader principal, execs []store.Execution) error {
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
			if !reader.owns(r) {
				r.Token = ""
			}
			execs[i].Requester = &r
		}
	}
	return nil
}

// owns reports whether p may see the API token r names: an admin, or whoever requested it.
func (p principal) owns(r store.Requester) bool {
	return p.Role == Admin || r.IdentityID != nil && *r.IdentityID == p.IdentityID
}

// withRequester is withRequesters for one execution.
func (m *Module) withRequester(ctx context.Context, reader principal, e store.Execution) (store.Execution, error) {
	one := []store.Execution{e}
	err := m.withRequesters(ctx, reader, one)
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
