package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/modules/pack"
)

// deletePack removes a pack and everything in it in one transaction, with the policies that
// name its actions or the pack. What it did stays on record: events, enforcements and
// executions keep their refs. A pack under --packs-dir comes back at the next start.
func (m *Module) deletePack(c echo.Context) error {
	ctx := c.Request().Context()
	ref := c.Param("ref")
	if ref == pack.CoreRef {
		return conflict("the built-in %s pack cannot be deleted: every process registers it again at start, and its triggers and actions are always there", pack.CoreRef)
	}
	policies, err := m.deps.Store.PackDelete(ctx, ref)
	if err != nil {
		return notFound(stillUsed(err, "delete those, or point them elsewhere, first"), "no pack %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "pack deleted", "pack", ref, "policies_deleted", policies)
	return c.NoContent(http.StatusNoContent)
}
