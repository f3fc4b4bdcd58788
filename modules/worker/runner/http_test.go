package runner_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/attune-go/attune/modules/worker/runner"
	"github.com/stretchr/testify/require"
)

func httpRunner(cfg runner.Config) runner.Runner { return runner.New(cfg)[runner.TypeHTTP] }

func httpJob(params map[string]any) runner.Job {
	return runner.Job{
		ExecutionID:  9,
		ActionRef:    "core.http_request",
		RunnerType:   runner.TypeHTTP,
		Parameters:   params,
		Timeout:      waitLimit,
		OutputFormat: runner.FormatJSON,
	}
}

// seen is what a test server received.
type seen struct {
	method      string
	path        string
	contentType string
	token       string
	host        string
	body        string
}

// echoServer records each request and answers with status and a JSON body.
func echoServer(t *testing.T, status int) (*httptest.Server, <-chan seen) {
	t.Helper()
	requests := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		requests <- seen{
			method:      r.Method,
			path:        r.URL.RequestURI(),
			contentType: r.Header.Get("Content-Type"),
			token:       r.Header.Get("X-Token"),
			host:        r.Host,
			body:        string(body),
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Add("X-Multi", "first")
		w.Header().Add("X-Multi", "second")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"status": "ok", "n": 1}`)
	}))
	t.Cleanup(srv.Close)
	return srv, requests
}

// stallServer accepts requests and never answers them until the client gives up or the test
// ends. arrived receives one value per request that reached the handler.
func stallServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv, arrived
}

func TestHTTPGet(t *testing.T) {
	t.Parallel()
	srv, requests := echoServer(t, http.StatusOK)
	res := httpRunner(runner.Config{}).Run(t.Context(), httpJob(map[string]any{"url": srv.URL + "/status?verbose=1"}))

	require.True(t, res.Succeeded, res.Error)
	require.Zero(t, res.ExitCode)
	got := <-requests
	require.Equal(t, http.MethodGet, got.method)
	require.Equal(t, "/status?verbose=1", got.path)
	require.Empty(t, got.body)

	data, ok := res.Data.(map[string]any)
	require.True(t, ok, "data is %T", res.Data)
	require.Equal(t, http.StatusOK, data["status_code"])
	require.Equal(t, `{"status": "ok", "n": 1}`, data["body"])
	require.Equal(t, map[string]any{"status": "ok", "n": json.Number("1")}, data["json"])
	headers, ok := data["headers"].(map[string]any)
	require.True(t, ok, "headers are %T", data["headers"])
	require.Equal(t, "first", headers["X-Multi"], "the first value of a repeated header")
	require.Equal(t, "application/json; charset=utf-8", headers["Content-Type"])
	require.IsType(t, int64(0), data["elapsed_ms"])
	require.False(t, res.StdoutTruncated)

	_, err := json.Marshal(res)
	require.NoError(t, err, "the result must fit the result column")
}

func TestHTTPPostJSONBody(t *testing.T) {
	t.Parallel()
	srv, requests := echoServer(t, http.StatusCreated)
	res := httpRunner(runner.Config{}).Run(t.Context(), httpJob(map[string]any{
		"url":       srv.URL + "/items",
		"method":    "post",
		"headers":   map[string]any{"X-Token": "secret", "Host": "api.example.com"},
		"json_body": map[string]any{"name": "widget", "qty": 2.0},
	}))

	require.True(t, res.Succeeded, res.Error)
	got := <-requests
	require.Equal(t, http.MethodPost, got.method)
	require.Equal(t, "application/json", got.contentType)
	require.Equal(t, "secret", got.token)
	require.Equal(t, "api.example.com", got.host)
	require.JSONEq(t, `{"name": "widget", "qty": 2}`, got.body)
	require.Equal(t, http.StatusCreated, res.Data.(map[string]any)["status_code"])
}

func TestHTTPHeadersOverrideJSONContentType(t *testing.T) {
	t.Parallel()
	srv, requests := echoServer(t, http.StatusOK)
	res := httpRunner(runner.Config{}).Run(t.Context(), httpJob(map[string]any{
		"url":       srv.URL,
		"method":    "PUT",
		"headers":   map[string]any{"content-type": "application/vnd.api+json"},
		"json_body": map[string]any{"a": true},
	}))
	require.True(t, res.Succeeded, res.Error)
	got := <-requests
	require.Equal(t, "application/vnd.api+json", got.contentType)
	require.JSONEq(t, `{"a": true}`, got.body)
}

func TestHTTPStringBody(t *testing.T) {
	t.Parallel()
	srv, requests := echoServer(t, http.StatusOK)
	res := httpRunner(runner.Config{}).Run(t.Context(), httpJob(map[string]any{
		"url":     srv.URL,
		"method":  "PATCH",
		"headers": map[string]any{"Content-Type": "text/plain"},
		"body":    "hello",
	}))
	require.True(t, res.Succeeded, res.Error)
	got := <-requests
	require.Equal(t, http.MethodPatch, got.method)
	require.Equal(t, "text/plain", got.contentType)
	require.Equal(t, "hello", got.body)
}

func TestHTTPErrorStatus(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{
		http.StatusNotFound:            "HTTP 404 Not Found",
		http.StatusInternalServerError: "HTTP 500 Internal Server Error",
	} {
		t.Run(want, func(t *testing.T) {
			t.Parallel()
			srv, requests := echoServer(t, status)
			res := httpRunner(runner.Config{}).Run(t.Context(), httpJob(map[string]any{"url": srv.URL}))
			<-requests
			require.False(t, res.Succeeded)
			require.Equal(t, want, res.Error)
			require.False(t, res.TimedOut)
			data := res.Data.(map[string]any)
			require.Equal(t, status, data["status_code"])
			require.Equal(t, `{"status": "ok", "n": 1}`, data["body"], "the response is kept on failure")
		})
	}
}

func TestHTTPBadParameters(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		params map[string]any
		want   string
	}{
		"missing url":   {map[string]any{}, "url is required"},
		"url not text":  {map[string]any{"url": 5.0}, "url must be a string"},
		"ftp":           {map[string]any{"url": "ftp://example.com/file"}, `url "ftp://example.com/file" must use http or https`},
		"no scheme":     {map[string]any{"url": "example.com/path"}, `url "example.com/path" must use http or https`},
		"no host":       {map[string]any{"url": "http:///path"}, `url "http:///path" has no host`},
		"unparseable":   {map[string]any{"url": "http://[::1"}, `url "http://[::1" is not valid`},
		"header value":  {map[string]any{"url": "http://x", "headers": map[string]any{"X-N": 1.0}}, "header X-N must be a string"},
		"both bodies":   {map[string]any{"url": "http://x", "body": "a", "json_body": map[string]any{}}, "body and json_body cannot both be set"},
		"bad timeout":   {map[string]any{"url": "http://x", "timeout": -1.0}, "timeout must be a positive number of seconds"},
		"bad method":    {map[string]any{"url": "http://x", "method": "GE T"}, "invalid method"},
		"method number": {map[string]any{"url": "http://x", "method": 1.0}, "method must be a non-empty string"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := httpRunner(runner.Config{}).Run(t.Context(), httpJob(tc.params))
			require.False(t, res.Succeeded)
			require.Contains(t, res.Error, tc.want)
			require.Nil(t, res.Data)
		})
	}
}

func TestHTTPTransportError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()

	res := httpRunner(runner.Config{}).Run(t.Context(), httpJob(map[string]any{"url": addr}))
	require.False(t, res.Succeeded)
	require.False(t, res.TimedOut)
	require.True(t, strings.HasPrefix(res.Error, "GET "+addr+": "), res.Error)
	require.Contains(t, res.Error, "connection refused")
	require.Nil(t, res.Data)
}

func TestHTTPTimeoutParameter(t *testing.T) {
	t.Parallel()
	srv, _ := stallServer(t)
	res := httpRunner(runner.Config{}).Run(t.Context(), httpJob(map[string]any{"url": srv.URL, "timeout": 0.2}))
	require.True(t, res.TimedOut)
	require.False(t, res.Cancelled)
	require.False(t, res.Succeeded)
	require.Equal(t, "timed out after 200ms", res.Error)
	require.GreaterOrEqual(t, res.DurationMS, int64(200))
}

func TestHTTPJobTimeoutWinsWhenShorter(t *testing.T) {
	t.Parallel()
	srv, _ := stallServer(t)
	job := httpJob(map[string]any{"url": srv.URL, "timeout": 60})
	job.Timeout = 200 * time.Millisecond
	res := httpRunner(runner.Config{}).Run(t.Context(), job)
	require.True(t, res.TimedOut)
	require.Equal(t, "timed out after 200ms", res.Error)
}

func TestHTTPCancel(t *testing.T) {
	t.Parallel()
	srv, arrived := stallServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	results := runAsync(ctx, httpRunner(runner.Config{}), httpJob(map[string]any{"url": srv.URL}))
	select {
	case <-arrived:
	case <-time.After(waitLimit):
		t.Fatal("request never reached the server")
	}
	cancel()
	res := awaitResult(t, results)
	require.True(t, res.Cancelled)
	require.False(t, res.TimedOut)
	require.False(t, res.Succeeded)
	require.Equal(t, "cancelled", res.Error)
}

func TestHTTPBodyTruncated(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `["`+strings.Repeat("x", 5000)+`"]`)
	}))
	t.Cleanup(srv.Close)

	res := httpRunner(runner.Config{OutputLimit: 100}).Run(t.Context(), httpJob(map[string]any{"url": srv.URL}))
	require.True(t, res.Succeeded, res.Error)
	require.True(t, res.StdoutTruncated)
	data := res.Data.(map[string]any)
	require.Len(t, data["body"], 100)
	require.Nil(t, data["json"], "a truncated body is not parsed")
}

func TestHTTPNonJSONBodyNotParsed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, `{"looks": "like json"}`)
	}))
	t.Cleanup(srv.Close)

	res := httpRunner(runner.Config{}).Run(t.Context(), httpJob(map[string]any{"url": srv.URL}))
	require.True(t, res.Succeeded, res.Error)
	data := res.Data.(map[string]any)
	require.Nil(t, data["json"])
	require.Equal(t, `{"looks": "like json"}`, data["body"])
}
