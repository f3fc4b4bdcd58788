package webui_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/modules/api/webui"
)

// newServer is an echo as the api role's server has it: the API's error handler, a route of
// its own under /auth/ and /healthz, and the UI for the rest.
func newServer(t *testing.T) *echo.Echo {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = api.ErrorHandler(slog.New(slog.DiscardHandler))
	e.POST("/auth/login", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	ui, err := webui.New()
	require.NoError(t, err)
	ui.Register(e)
	return e
}

func do(e *echo.Echo, method, path string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// Any path the server does not route is the UI's page, with the headers that keep it from
// running another site's scripts or being framed.
func TestServeIndexAnywhere(t *testing.T) {
	e := newServer(t)
	page := do(e, http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, page.Code)
	for _, p := range []string{"/executions/42", "/actions/demo.hello", "/apis", "/authors", "/healthzz", "/assets"} {
		rec := do(e, http.MethodGet, p, nil)
		require.Equal(t, http.StatusOK, rec.Code, p)
		require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"), p)
		require.Equal(t, page.Body.String(), rec.Body.String(), p)
		require.Contains(t, rec.Body.String(), `src="/assets/app.js"`, p)
		require.Equal(t, "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
			rec.Header().Get("Content-Security-Policy"), p)
		require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), p)
		require.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"), p)
		require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"), p)
		require.Equal(t, "no-cache", rec.Header().Get("Cache-Control"), p)
		require.NotEmpty(t, rec.Header().Get("ETag"), p)
	}
}

// A file under /assets/ is answered as it is, typed; an unknown one, or a path that climbs
// out of /assets/, is a 404.
func TestServeAssets(t *testing.T) {
	e := newServer(t)
	rec := do(e, http.MethodGet, "/assets/app.js", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/javascript; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Contains(t, rec.Body.String(), "render(")
	require.Equal(t, "text/css; charset=utf-8", do(e, http.MethodGet, "/assets/style.css", nil).Header().Get("Content-Type"))
	for _, p := range []string{"/assets/nothing.js", "/assets/", "/assets/../index.html", "/assets/lib"} {
		rec := do(e, http.MethodGet, p, nil)
		require.Equal(t, http.StatusNotFound, rec.Code, p)
		requireJSONError(t, rec, "not_found", p)
	}
}

// HEAD answers what GET would, headers and length included, without the body.
func TestServeHead(t *testing.T) {
	e := newServer(t)
	for _, p := range []string{"/", "/rules", "/assets/app.js"} {
		get := do(e, http.MethodGet, p, nil)
		head := do(e, http.MethodHead, p, nil)
		require.Equal(t, http.StatusOK, head.Code, p)
		require.Zero(t, head.Body.Len(), p)
		require.Equal(t, strconv.Itoa(get.Body.Len()), head.Header().Get("Content-Length"), p)
		for _, h := range []string{"Content-Type", "ETag", "Cache-Control", "Content-Security-Policy"} {
			require.Equal(t, get.Header().Get(h), head.Header().Get(h), "%s %s", p, h)
		}
	}
	require.Equal(t, http.StatusNotFound, do(e, http.MethodHead, "/api/v1/nothing", nil).Code)
}

// A browser that has the file revalidates it for a 304, without the body; another ETag gets
// the file.
func TestServeNotModified(t *testing.T) {
	e := newServer(t)
	for _, p := range []string{"/", "/assets/app.js"} {
		etag := do(e, http.MethodGet, p, nil).Header().Get("ETag")
		rec := do(e, http.MethodGet, p, http.Header{"If-None-Match": {etag}})
		require.Equal(t, http.StatusNotModified, rec.Code, p)
		require.Zero(t, rec.Body.Len(), p)
		require.Equal(t, etag, rec.Header().Get("ETag"), p)
		rec = do(e, http.MethodGet, p, http.Header{"If-None-Match": {`"other"`}})
		require.Equal(t, http.StatusOK, rec.Code, p)
		require.NotZero(t, rec.Body.Len(), p)
	}
	require.NotEqual(t, do(e, http.MethodGet, "/", nil).Header().Get("ETag"), do(e, http.MethodGet, "/assets/app.js", nil).Header().Get("ETag"))
}

// The server's own paths, and anything under them it does not route, are its JSON 404s,
// never the UI's page: GET /auth/login included, which is POST only (a 404, not a 405).
// Another method than GET or HEAD on a UI path is a 405.
func TestServeReservedPaths(t *testing.T) {
	e := newServer(t)
	for _, p := range []string{"/api", "/api/", "/api/v1/nothing", "/auth", "/auth/", "/auth/x", "/auth/login", "/metrics", "/metrics/x", "/healthz/x", "/readyz", "/readyz/x"} {
		rec := do(e, http.MethodGet, p, nil)
		require.Equal(t, http.StatusNotFound, rec.Code, p)
		requireJSONError(t, rec, "not_found", p)
		require.Empty(t, rec.Header().Get("Content-Security-Policy"), p)
	}
	require.Equal(t, http.StatusOK, do(e, http.MethodGet, "/healthz", nil).Code, "the server's route wins")
	require.Equal(t, http.StatusNoContent, do(e, http.MethodPost, "/auth/login", nil).Code)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := do(e, m, "/rules", nil)
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, m)
		requireJSONError(t, rec, "method_not_allowed", m)
	}
}

func requireJSONError(t *testing.T, rec *httptest.ResponseRecorder, code, msg string) {
	t.Helper()
	require.Contains(t, rec.Header().Get("Content-Type"), "application/json", msg)
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	var out struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &out), msg)
	require.Equal(t, code, out.Error.Code, msg)
}
