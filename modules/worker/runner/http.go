package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// httpRunner sends one HTTP request (core.http_request) with the worker's own client.
type httpRunner struct {
	cfg Config
}

// httpRequest is a job's parameters, checked.
type httpRequest struct {
	url     *url.URL
	method  string
	headers map[string]string
	body    []byte
	isJSON  bool
	timeout time.Duration
}

// Run implements Runner.
func (r *httpRunner) Run(ctx context.Context, job Job) Result {
	if ctx.Err() != nil {
		return cancelledBeforeStart()
	}
	if job.Timeout <= 0 {
		return failed(fmt.Sprintf("job timeout must be positive, got %s", job.Timeout))
	}
	spec, err := parseHTTPParams(job.Parameters)
	if err != nil {
		return failed(err.Error())
	}
	timeout := job.Timeout
	if spec.timeout > 0 && spec.timeout < timeout {
		timeout = spec.timeout
	}
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, spec.method, spec.url.String(), bytes.NewReader(spec.body))
	if err != nil {
		return failed(fmt.Sprintf("build request: %v", err))
	}
	for name, value := range spec.headers {
		if strings.EqualFold(name, "Host") {
			req.Host = value
			continue
		}
		req.Header.Set(name, value)
	}
	if spec.isJSON && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	res, err := r.do(req, spec)
	res.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		// Say which of the operator, the timeout or the network ended the request.
		switch {
		case ctx.Err() != nil:
			res.Cancelled, res.Error = true, "cancelled"
		case errors.Is(reqCtx.Err(), context.DeadlineExceeded):
			res.TimedOut, res.Error = true, fmt.Sprintf("timed out after %s", timeout)
		default:
			res.Error = err.Error()
		}
	}
	return res
}

// do sends req and reads the response into a result. The error is set when the exchange
// itself failed, before or while reading the response; an error status is not one.
func (r *httpRunner) do(req *http.Request, spec httpRequest) (Result, error) {
	start := time.Now()
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return Result{ExitCode: -1}, fmt.Errorf("%s %s: %w", spec.method, spec.url.Redacted(), err)
	}
	// The body is only read up to the limit; closing without draining it gives up the
	// connection rather than downloading what would be thrown away.
	defer resp.Body.Close()
	body, truncated, readErr := readCapped(resp.Body, r.cfg.OutputLimit)

	headers := make(map[string]any, len(resp.Header))
	for name, values := range resp.Header {
		if len(values) > 0 {
			headers[name] = values[0]
		}
	}
	var parsed any
	if !truncated && readErr == nil && isJSONContentType(resp.Header.Get("Content-Type")) {
		// A body that claims to be JSON and is not is still returned as text.
		parsed, _ = parseJSON(body)
	}
	res := Result{
		StdoutTruncated: truncated,
		Data: map[string]any{
			"status_code": resp.StatusCode,
			"headers":     headers,
			"body":        string(body),
			"json":        parsed,
			"elapsed_ms":  time.Since(start).Milliseconds(),
		},
	}
	switch {
	case readErr != nil:
		res.ExitCode = -1
		return res, fmt.Errorf("read response body: %w", readErr)
	case resp.StatusCode >= 400:
		res.ExitCode, res.Error = -1, "HTTP "+statusLine(resp)
	default:
		res.Succeeded = true
	}
	return res, nil
}

// statusLine is the status code and reason, "500 Internal Server Error", even from servers
// that send no reason.
func statusLine(resp *http.Response) string {
	if resp.Status != "" && resp.Status != fmt.Sprint(resp.StatusCode) {
		return resp.Status
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
}

func isJSONContentType(value string) bool {
	mediaType, _, err := mime.ParseMediaType(value)
	if err != nil {
		return false
	}
	return mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
}

// parseHTTPParams checks core.http_request's parameters.
func parseHTTPParams(params map[string]any) (httpRequest, error) {
	var spec httpRequest
	rawURL, ok := params["url"].(string)
	switch {
	case params["url"] == nil:
		return spec, errors.New("url is required")
	case !ok:
		return spec, fmt.Errorf("url must be a string, got %T", params["url"])
	}
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return spec, fmt.Errorf("url %q is not valid: %v", rawURL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return spec, fmt.Errorf("url %q must use http or https", rawURL)
	case u.Host == "":
		return spec, fmt.Errorf("url %q has no host", rawURL)
	}
	spec.url = u

	spec.method = http.MethodGet
	if m, present := params["method"]; present && m != nil {
		s, ok := m.(string)
		if !ok || s == "" {
			return spec, fmt.Errorf("method must be a non-empty string, got %v", m)
		}
		spec.method = strings.ToUpper(s)
	}

	if spec.headers, err = stringMap(params["headers"]); err != nil {
		return spec, err
	}

	body, hasBody := params["body"]
	jsonBody, hasJSON := params["json_body"]
	hasBody, hasJSON = hasBody && body != nil, hasJSON && jsonBody != nil
	switch {
	case hasBody && hasJSON:
		return spec, errors.New("body and json_body cannot both be set")
	case hasBody:
		s, ok := body.(string)
		if !ok {
			return spec, fmt.Errorf("body must be a string, got %T", body)
		}
		spec.body = []byte(s)
	case hasJSON:
		if spec.body, err = json.Marshal(jsonBody); err != nil {
			return spec, fmt.Errorf("json_body cannot be encoded: %v", err)
		}
		spec.isJSON = true
	}

	if t, present := params["timeout"]; present && t != nil {
		seconds, ok := number(t)
		if !ok || seconds <= 0 || math.IsInf(seconds, 0) || math.IsNaN(seconds) {
			return spec, fmt.Errorf("timeout must be a positive number of seconds, got %v", t)
		}
		// Clamped so that a huge timeout cannot overflow into a negative duration.
		spec.timeout = time.Duration(min(seconds, float64(math.MaxInt64/int64(time.Second))) * float64(time.Second))
	}
	return spec, nil
}

// stringMap reads the headers parameter: an object whose values are all strings.
func stringMap(v any) (map[string]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]string:
		return v, nil
	case map[string]any:
		out := make(map[string]string, len(v))
		for name, value := range v {
			s, ok := value.(string)
			if !ok {
				return nil, fmt.Errorf("header %s must be a string, got %T", name, value)
			}
			out[name] = s
		}
		return out, nil
	default:
		return nil, fmt.Errorf("headers must be an object, got %T", v)
	}
}

// number reads a numeric parameter in any of the forms a decoded or hand-built map holds.
func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	default:
		return 0, false
	}
}
