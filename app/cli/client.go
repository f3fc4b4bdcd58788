package cli

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
	"sync"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

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
	// urlFlag tells a URL given on the command line (or put there by ApplyEnv) from the
	// default, which the environment and the config file may still replace.
	urlFlag *pflag.Flag
	// writesConfig lets the config file named by ATTUNE_CONFIG be missing: login creates it.
	writesConfig bool
}

func (a *apiFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&a.url, "api-url", defaultAPIURL, "base URL of the Attune API (a process running the api role)")
	BindEnv(fs, "api-url", "ATTUNE_API_URL")
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
	var refresh, configPath string
	if !urlGiven || !tokenGiven {
		cfg, path, err := loadCLIConfig()
		if err != nil && a.writesConfig && errors.Is(err, fs.ErrNotExist) {
			// ATTUNE_CONFIG names the file this command is about to write.
			cfg, path, err = readCLIConfig(path, true)
		}
		if err != nil {
			return nil, UsageError{err}
		}
		if !urlGiven && cfg.APIURL != "" {
			rawURL, source = cfg.APIURL, "api_url in "+path
		}
		if !tokenGiven {
			token, refresh, configPath = cfg.Token, cfg.RefreshToken, path
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
		return nil, UsageError{fmt.Errorf("invalid %s %q: %v", source, rawURL, err)}
	}
	return &apiClient{baseURL: u, token: token, refreshToken: refresh, configPath: configPath, http: &http.Client{Timeout: apiTimeout}}, nil
}

// cliConfig is the optional file of defaults for the commands that call the API; attune
// login writes the tokens into it.
type cliConfig struct {
	APIURL       string `yaml:"api_url,omitempty"`
	Token        string `yaml:"token,omitempty"`
	RefreshToken string `yaml:"refresh_token,omitempty"`
}

// saveCLIConfig writes the config file readable by its owner alone, as it holds tokens.
// The file is replaced whole through a rename, so a crash leaves the old one or the new.
func saveCLIConfig(path string, cfg cliConfig) error {
	if path == "" {
		return errors.New("save config: no home directory to keep it in; set ATTUNE_CONFIG")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save config %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	return nil
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
	return readCLIConfig(path, !named)
}

// readCLIConfig reads the config file at path; mayBeMissing makes a missing file an empty
// config, as it is for the default file and for the one login is about to write.
func readCLIConfig(path string, mayBeMissing bool) (cliConfig, string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && mayBeMissing {
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
	// token is sent as a bearer token when known.
	token string
	// refreshToken renews token when the API says it expired, and configPath is the file
	// both came from, which then gets the new pair.
	refreshToken string
	configPath   string
	http         *http.Client
	// tokenMu guards token and refreshToken, which a renewal changes while a live stream's
	// goroutine may be reading them.
	tokenMu sync.Mutex
}

// currentToken is the token to send now.
func (c *apiClient) currentToken() string {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	return c.token
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
		return fmt.Errorf("%w (%d %s)", ae, ae.Status, http.StatusText(ae.Status))
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
// or page through a list; query may be nil. An access token that expired is renewed once
// with the refresh token, when there is one, and the request sent again.
func (c *apiClient) call(ctx context.Context, method, path string, query url.Values, body any) (*envelope, error) {
	var payload []byte
	contentType := "application/json"
	if raw, ok := body.(rawBody); ok {
		payload, contentType = raw.data, raw.contentType
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request to %s: %w", path, err)
		}
		payload = b
	}
	env, err := c.roundTrip(ctx, method, path, query, payload, contentType)
	var ae *apiError
	c.tokenMu.Lock()
	canRenew := c.refreshToken != ""
	c.tokenMu.Unlock()
	if errors.As(err, &ae) && ae.Code == "token_expired" && canRenew {
		if rerr := c.renew(ctx); rerr != nil {
			return nil, fmt.Errorf("%w; renewing it failed too (%v): log in again with attune login", err, rerr)
		}
		return c.roundTrip(ctx, method, path, query, payload, contentType)
	}
	return env, err
}

// rawBody is a request body sent as it is, not as JSON: a pack's archive.
type rawBody struct {
	contentType string
	data        []byte
}

func (c *apiClient) roundTrip(ctx context.Context, method, path string, query url.Values, payload []byte, contentType string) (*envelope, error) {
	target := c.baseURL.JoinPath(path)
	if len(query) > 0 {
		target.RawQuery = query.Encode()
	}
	var reader io.Reader
	if payload != nil {
		reader = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), reader)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, target, err)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", contentType)
	}
	token := c.currentToken()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
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
		if resp.StatusCode == http.StatusUnauthorized && token == "" {
			env.Error.Message += "; log in with attune login, or set ATTUNE_TOKEN"
		}
		return nil, &apiError{Status: resp.StatusCode, Code: env.Error.Code, Message: env.Error.Message}
	}
	return &env, nil
}

// tokenPair is what /auth/login and /auth/refresh answer.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// authCall posts body to one of the /auth endpoints, which answer without the data envelope.
func (c *apiClient) authCall(ctx context.Context, path string, body any) (tokenPair, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return tokenPair{}, err
	}
	target := c.baseURL.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(b))
	if err != nil {
		return tokenPair{}, fmt.Errorf("build request POST %s: %w", target, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return tokenPair{}, c.transportError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIAnswer))
	if err != nil {
		return tokenPair{}, fmt.Errorf("read answer of POST %s: %w", target, err)
	}
	var answer struct {
		tokenPair
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || (answer.Error == nil && (resp.StatusCode != http.StatusOK || answer.AccessToken == "")) {
		return tokenPair{}, fmt.Errorf("POST %s: unexpected answer %s (is --api-url the Attune API?)", target, resp.Status)
	}
	if answer.Error != nil {
		return tokenPair{}, &apiError{Status: resp.StatusCode, Code: answer.Error.Code, Message: answer.Error.Message}
	}
	return answer.tokenPair, nil
}

// login exchanges a login and password for a token pair.
func (c *apiClient) login(ctx context.Context, login, password string) (tokenPair, error) {
	return c.authCall(ctx, "/auth/login", map[string]string{"login": login, "password": password})
}

// renew trades the refresh token for a new pair and keeps it in the config file the old one
// came from.
func (c *apiClient) renew(ctx context.Context) error {
	c.tokenMu.Lock()
	refresh := c.refreshToken
	c.tokenMu.Unlock()
	pair, err := c.authCall(ctx, "/auth/refresh", map[string]string{"refresh_token": refresh})
	if err != nil {
		return err
	}
	c.tokenMu.Lock()
	c.token, c.refreshToken = pair.AccessToken, pair.RefreshToken
	c.tokenMu.Unlock()
	cfg, path, err := loadCLIConfig()
	if err != nil || path != c.configPath {
		return err
	}
	cfg.Token, cfg.RefreshToken = pair.AccessToken, pair.RefreshToken
	return saveCLIConfig(path, cfg)
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
