// Package webui serves Attune's web UI: static files embedded in the binary, which the api
// role's HTTP server answers at / beside the API they call.
package webui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed static
var embedded embed.FS

// reserved are the paths that belong to the server, not to the UI: an unknown path there or
// under them is the server's 404, never the UI's page.
var reserved = []string{"/api", "/auth", "/healthz", "/readyz", "/metrics"}

// securityHeaders keep the UI's pages from running anything but its own files and from
// being framed by another site.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
}

// file is one embedded file with what its answers need.
type file struct {
	body        []byte
	etag        string
	contentType string
}

// UI is the set of embedded files, read once.
type UI struct {
	files map[string]file
	index file
}

// New reads the embedded files.
func New() (*UI, error) {
	root, err := fs.Sub(embedded, "static")
	if err != nil {
		return nil, fmt.Errorf("webui: open the embedded files: %w", err)
	}
	ui := &UI{files: make(map[string]file)}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ui.files["/"+name] = file{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: contentType(name)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webui: read the embedded files: %w", err)
	}
	index, ok := ui.files["/index.html"]
	if !ok {
		return nil, fmt.Errorf("webui: index.html is not embedded")
	}
	ui.index = index
	return ui, nil
}

// Register answers GET and HEAD for every path the server does not route otherwise: a file
// under /assets/ as it is, anything else with the UI's page, whose script reads the path.
func (ui *UI) Register(e *echo.Echo) {
	e.GET("/*", ui.serve)
	e.HEAD("/*", ui.serve)
}

func (ui *UI) serve(c echo.Context) error {
	p := c.Request().URL.Path
	if isReserved(p) {
		return echo.ErrNotFound
	}
	f := ui.index
	if strings.HasPrefix(p, "/assets/") {
		clean := path.Clean(p)
		var ok bool
		if f, ok = ui.files[clean]; !ok || !strings.HasPrefix(clean, "/assets/") {
			return echo.ErrNotFound
		}
	}
	h := c.Response().Header()
	for k, v := range securityHeaders {
		h.Set(k, v)
	}
	// Revalidated on each load, so that an upgraded server's files are used at once; an
	// unchanged file costs a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	if c.Request().Header.Get("If-None-Match") == f.etag {
		return c.NoContent(http.StatusNotModified)
	}
	if c.Request().Method == http.MethodHead {
		// The length GET would send, as HTTP asks of HEAD; the body is left out.
		h.Set("Content-Type", f.contentType)
		h.Set("Content-Length", strconv.Itoa(len(f.body)))
		return c.NoContent(http.StatusOK)
	}
	return c.Blob(http.StatusOK, f.contentType, f.body)
}

// isReserved answers whether p is one of the server's paths or under one of them.
func isReserved(p string) bool {
	for _, r := range reserved {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	default:
		return "application/octet-stream"
	}
}
