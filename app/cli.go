package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitCode ends a command with that exit status and no message: the command has already
// written its answer, and the status carries the rest, as grep's 1 says "no match".
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// usageArgs makes a bad number of positional arguments a usage error (exit 2), as bad flags
// are; cobra's own validators return plain errors.
func usageArgs(validate cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := validate(cmd, args); err != nil {
			return usageError{fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
		}
		return nil
	}
}

const (
	defaultAPIURL = "http://localhost:8080"
	// apiTimeout bounds one API call; registering a large pack is the slowest one today.
	apiTimeout = 30 * time.Second
	// maxAPIAnswer bounds what is read of an answer, so a wrong --api-url pointing at
	// something that streams cannot exhaust memory.
	maxAPIAnswer = 32 << 20
)

// apiFlags are shared by every command that talks to the API.
type apiFlags struct {
	url string
}

func (a *apiFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&a.url, "api-url", defaultAPIURL, "base URL of the Attune API (a process running the api role)")
	bindEnv(fs, "api-url", "ATTUNE_API_URL")
}

// client checks the URL before any request, so that a typo is a usage error rather than a
// confusing transport failure.
func (a *apiFlags) client() (*apiClient, error) {
	u, err := url.Parse(a.url)
	if err == nil {
		switch {
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.RawQuery != "", u.Fragment != "":
			err = errors.New("want http://host:port or https://host:port, optionally with a path prefix")
		}
	}
	if err != nil {
		return nil, usageError{fmt.Errorf("invalid --api-url (or ATTUNE_API_URL) %q: %v", a.url, err)}
	}
	return &apiClient{baseURL: u, http: &http.Client{Timeout: apiTimeout}}, nil
}

// apiClient calls the Attune REST API and unwraps its envelopes.
type apiClient struct {
	baseURL *url.URL
	http    *http.Client
}

// apiError is an error answer of the API. Its text is the API's message alone, which is
// written for people and already names what is wrong.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

// envelope is both answer shapes: {"data": ...} and {"error": {"code", "message"}}.
type envelope struct {
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends body (nil for none) as JSON to path under /api/v1's base URL and decodes the
// answer's data into out (nil to ignore it). An error answer becomes an *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	target := c.baseURL.JoinPath(path)
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request to %s: %w", path, err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), reader)
	if err != nil {
		return fmt.Errorf("build request %s %s: %w", method, target, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIAnswer))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, target, err)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || (env.Error == nil && resp.StatusCode >= 300) {
		// Not the API's shape: most likely --api-url points at something else.
		return fmt.Errorf("%s %s: unexpected answer %s (is --api-url the Attune API?)", method, target, resp.Status)
	}
	if env.Error != nil && resp.StatusCode == http.StatusNotFound && env.Error.Message == http.StatusText(http.StatusNotFound) {
		// The router's bare 404, not the API's "no such thing": the server answering there
		// runs without the api role, or the path prefix in --api-url is wrong.
		return fmt.Errorf("%s %s: not found; is the api role running there, and is --api-url right?", method, target)
	}
	if env.Error != nil {
		return &apiError{Status: resp.StatusCode, Code: env.Error.Code, Message: env.Error.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, target, err)
	}
	return nil
}

// transportError explains a request that got no answer; the usual cause is an API that is not
// running where --api-url points, so the message says how to point it elsewhere.
func (c *apiClient) transportError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err // the URL is named below, once
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("no answer from the Attune API at %s within %s", c.baseURL, c.http.Timeout)
	}
	// Dial errors, DNS failures included, mean nothing answers at that address.
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		// "connect: connection refused" reads better without the syscall's name.
		cause := strings.TrimPrefix(opErr.Err.Error(), "connect: ")
		return fmt.Errorf("cannot reach the Attune API at %s: %s; is a process with the api role running there? "+
			"Point --api-url or ATTUNE_API_URL at it", c.baseURL, cause)
	}
	return fmt.Errorf("call the Attune API at %s: %w", c.baseURL, err)
}
