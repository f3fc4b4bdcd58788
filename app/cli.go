package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
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
	url    string
	output outputFormat
	// urlFlag tells a URL given on the command line (or put there by applyEnv) from the
	// default, which the environment and the config file may still replace.
	urlFlag *pflag.Flag
}

func (a *apiFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&a.url, "api-url", defaultAPIURL, "base URL of the Attune API (a process running the api role)")
	bindEnv(fs, "api-url", "ATTUNE_API_URL")
	a.urlFlag = fs.Lookup("api-url")
}

// registerOutput adds -o/--output, for the commands that print what the API answers.
func (a *apiFlags) registerOutput(fs *pflag.FlagSet) {
	a.output = outputTable
	fs.VarP(&a.output, "output", "o", "output format: table, json or yaml")
}

// client resolves the URL and token (flag > env > config file > default) and checks the URL
// before any request, so that a typo is a usage error rather than a confusing transport failure.
func (a *apiFlags) client() (*apiClient, error) {
	rawURL, source := a.url, "--api-url (or ATTUNE_API_URL)"
	envURL, urlFromEnv := os.LookupEnv("ATTUNE_API_URL")
	urlGiven := a.urlFlag != nil && a.urlFlag.Changed
	if !urlGiven && urlFromEnv {
		rawURL, urlGiven = envURL, true
	}
	token, tokenGiven := os.LookupEnv("ATTUNE_TOKEN")
	if !urlGiven || !tokenGiven {
		cfg, path, err := loadCLIConfig()
		if err != nil {
			return nil, usageError{err}
		}
		if !urlGiven && cfg.APIURL != "" {
			rawURL, source = cfg.APIURL, "api_url in "+path
		}
		if !tokenGiven {
			token = cfg.Token
		}
	}
	u, err := url.Parse(rawURL)
	if err == nil {
		switch {
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.RawQuery != "", u.Fragment != "":
			err = errors.New("want http://host:port or https://host:port, optionally with a path prefix")
		}
	}
	if err != nil {
		return nil, usageError{fmt.Errorf("invalid %s %q: %v", source, rawURL, err)}
	}
	return &apiClient{baseURL: u, token: token, http: &http.Client{Timeout: apiTimeout}}, nil
}

// cliConfig is the optional file of defaults for the commands that call the API.
type cliConfig struct {
	APIURL string `yaml:"api_url"`
	Token  string `yaml:"token"`
}

// loadCLIConfig reads $ATTUNE_CONFIG, else attune/config.yaml under $XDG_CONFIG_HOME or
// ~/.config. Only the default file may be missing: a file named on purpose must be there.
func loadCLIConfig() (cliConfig, string, error) {
	path, named := os.LookupEnv("ATTUNE_CONFIG")
	if !named || path == "" {
		named = false
		dir := os.Getenv("XDG_CONFIG_HOME")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				// No home, no default file: nothing to read.
				return cliConfig{}, "", nil
			}
			dir = filepath.Join(home, ".config")
		}
		path = filepath.Join(dir, "attune", "config.yaml")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !named {
		return cliConfig{}, path, nil
	}
	if err != nil {
		return cliConfig{}, path, fmt.Errorf("read config file %s: %w", path, errors.Unwrap(err))
	}
	var cfg cliConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	// An unknown key is most likely a misspelt one, which would otherwise be ignored silently.
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cliConfig{}, path, fmt.Errorf("read config file %s: %w", path, err)
	}
	return cfg, path, nil
}

// apiClient calls the Attune REST API and unwraps its envelopes.
type apiClient struct {
	baseURL *url.URL
	// token is sent as a bearer token when known; the server does not check it yet.
	token string
	http  *http.Client
}

// apiError is an error answer of the API. Its text is the API's message alone, which is
// written for people and already names what is wrong.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

// withStatus adds the HTTP status to an API error's message: the newer commands say it, as the
// status tells "no such thing" from "not allowed now".
func withStatus(err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s (%d %s)", ae.Message, ae.Status, http.StatusText(ae.Status))
	}
	return err
}

// envelope is both answer shapes: {"data": ...} and {"error": {"code", "message"}}.
type envelope struct {
	Data       json.RawMessage `json:"data"`
	Pagination *pagination     `json:"pagination"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// pagination is a list answer's paging, in the API's words.
type pagination struct {
	Page       int `json:"page"`
	PageSize   int `json:"page_size"`
	TotalItems int `json:"total_items"`
	TotalPages int `json:"total_pages"`
}

// do sends body (nil for none) as JSON to path under /api/v1's base URL and decodes the
// answer's data into out (nil to ignore it). An error answer becomes an *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	env, err := c.call(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, c.baseURL.JoinPath(path), err)
	}
	return nil
}

// call is do without the decoding of data, for callers that pass the answer on as it came
// or page through a list; query may be nil.
func (c *apiClient) call(ctx context.Context, method, path string, query url.Values, body any) (*envelope, error) {
	target := c.baseURL.JoinPath(path)
	if len(query) > 0 {
		target.RawQuery = query.Encode()
	}
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request to %s: %w", path, err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), reader)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, target, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIAnswer))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s %s: %w", method, target, err)
	}
	if resp.StatusCode == http.StatusNoContent {
		// A deletion: done, and nothing to say.
		return &envelope{}, nil
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || (env.Error == nil && resp.StatusCode >= 300) {
		// Not the API's shape: most likely --api-url points at something else.
		return nil, fmt.Errorf("%s %s: unexpected answer %s (is --api-url the Attune API?)", method, target, resp.Status)
	}
	if env.Error != nil && resp.StatusCode == http.StatusNotFound && env.Error.Message == http.StatusText(http.StatusNotFound) {
		// The router's bare 404, not the API's "no such thing": the server answering there
		// runs without the api role, or the path prefix in --api-url is wrong.
		return nil, fmt.Errorf("%s %s: not found; is the api role running there, and is --api-url right?", method, target)
	}
	if env.Error != nil {
		return nil, &apiError{Status: resp.StatusCode, Code: env.Error.Code, Message: env.Error.Message}
	}
	return &env, nil
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
