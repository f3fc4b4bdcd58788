package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
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

// uploadPack registers the pack in a .tar.gz body: unpacked into a temporary directory (refused,
// naming the entry, for paths that leave it, links, devices and archives over the limits),
// loaded and checked as a directory is, then stored as a version. No directory of it stays
// on this server: workers fetch the version from PostgreSQL.
func (m *Module) uploadPack(c echo.Context) error {
	ctx := c.Request().Context()
	lim := pack.DefaultLimits
	body, err := readBody(c, int(lim.Compressed))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "attune-upload-")
	if err != nil {
		return fmt.Errorf("upload pack: %w", err)
	}
	defer os.RemoveAll(dir)
	var refused *pack.ArchiveError
	if err := pack.Extract(bytes.NewReader(body), dir, lim); errors.As(err, &refused) {
		return badRequest("upload pack: %v", err)
	} else if err != nil {
		return fmt.Errorf("upload pack: %w", err)
	}
	root, err := pack.Root(dir)
	if err != nil {
		return badRequest("upload pack: %v", err)
	}
	p, err := pack.Load(root)
	if err != nil {
		return badRequest("upload pack: %s", strings.ReplaceAll(err.Error(), root, "archive"))
	}
	if err := p.Detach(lim); errors.As(err, &refused) {
		return badRequest("upload pack: %v", err)
	} else if err != nil {
		return fmt.Errorf("upload pack: %w", err)
	}
	registered, err := pack.Register(ctx, m.deps.Store, p)
	var invalid *pack.Error
	if errors.As(err, &invalid) {
		return badRequest("upload pack %s: %v", p.Ref, err)
	}
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "pack uploaded", "pack", registered.Ref, "version", registered.CurrentVersion, "changes", registered.Changes)
	return c.JSON(http.StatusOK, dataBody[store.RegisteredPack]{Data: registered})
}
