package api

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// These tests sit inside the package so that the document's schemas can be held to the
// unexported request and answer types as well as to the store's.

// router is the API module's routes on a server of their own, as app wires them.
func router(t *testing.T) (*echo.Echo, *Module) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(logger)
	m, err := New(Config{}, Deps{Logger: logger, Store: storetest.NewStore(t), Broker: membroker.New(broker.Options{}), Keyring: storetest.Keyring(t),
		Routes: e.Group("/api/v1"), Auth: e.Group("/auth")})
	require.NoError(t, err)
	return e, m
}

// docRoute is how the document names a route: "METHOD /path" with {params}, under the
// server its path item names (/api/v1 unless it says otherwise).
func docRoute(method, server, path string) string {
	return strings.ToLower(method) + " " + server + path
}

// pathServer is the server a path item overrides the document's with, or "".
func pathServer(t *testing.T, item map[string]json.RawMessage) string {
	t.Helper()
	raw, ok := item["servers"]
	if !ok {
		return ""
	}
	var servers []struct {
		URL string `json:"url"`
	}
	require.NoError(t, json.Unmarshal(raw, &servers))
	require.Len(t, servers, 1)
	return servers[0].URL
}

// openAPIDoc is the part of the document the tests read.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Servers []struct {
		URL string `json:"url"`
	} `json:"servers"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]openAPIParam  `json:"parameters"`
		Schemas    map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

type openAPIParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type openAPISchema struct {
	Ref        string                     `json:"$ref"`
	Properties map[string]json.RawMessage `json:"properties"`
	AllOf      []openAPISchema            `json:"allOf"`
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

func loadDoc(t *testing.T) openAPIDoc {
	t.Helper()
	raw, err := openAPIDocument()
	require.NoError(t, err)
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "openapi is %q", doc.OpenAPI)
	require.Len(t, doc.Servers, 1)
	require.Equal(t, "/api/v1", doc.Servers[0].URL, "paths are relative to the group the module is given")
	return doc
}

var echoParam = regexp.MustCompile(`:([^/]+)`)

// The document and the router name the same routes: nothing routed is undocumented, and
// nothing documented is missing. Each path parameter is declared where it is used.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc := loadDoc(t)
	e, _ := router(t)

	var routed []string
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound || (!strings.HasPrefix(r.Path, "/api/v1/") && !strings.HasPrefix(r.Path, "/auth/")) {
			continue
		}
		routed = append(routed, strings.ToLower(r.Method)+" "+echoParam.ReplaceAllString(r.Path, "{$1}"))
	}
	var documented []string
	for path, item := range doc.Paths {
		server := cmp.Or(pathServer(t, item), doc.Servers[0].URL)
		for method, op := range item {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			documented = append(documented, docRoute(method, server, path))
			checkPathParams(t, doc, method+" "+path, item["parameters"], op)
		}
	}
	require.NotEmpty(t, routed)
	require.Empty(t, missing(routed, documented), "routed but not in openapi.yaml")
	require.Empty(t, missing(documented, routed), "in openapi.yaml but not routed")
}

// Each operation says who may call it, as the router enforces it: x-attune-role names the
// least role, with 401 and 403 among its answers; an open route says security: [] instead.
func TestOpenAPIRoles(t *testing.T) {
	t.Parallel()
	doc := loadDoc(t)
	_, m := router(t)
	require.NotEmpty(t, m.roles)
	for route, role := range m.roles {
		method, path, _ := strings.Cut(route, " ")
		item, ok := doc.Paths[echoParam.ReplaceAllString(path, "{$1}")]
		require.True(t, ok, "%s: not documented", route)
		var op struct {
			Role      string                     `json:"x-attune-role"`
			Security  *[]any                     `json:"security"`
			Responses map[string]json.RawMessage `json:"responses"`
		}
		require.NoError(t, json.Unmarshal(item[strings.ToLower(method)], &op), route)
		if role == Public {
			require.Empty(t, op.Role, "%s is public", route)
			require.NotNil(t, op.Security, "%s is public: say security: []", route)
			require.Empty(t, *op.Security, "%s is public: say security: []", route)
			continue
		}
		require.Equal(t, string(role), op.Role, "%s: x-attune-role", route)
		require.Nil(t, op.Security, "%s takes the document's bearer security", route)
		require.Contains(t, op.Responses, "401", route)
		require.Contains(t, op.Responses, "403", route)
	}
}

// missing returns what is in want but not in have, sorted.
func missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}

// checkPathParams requires the operation to declare, itself or on its path, exactly the path
// parameters its template holds.
func checkPathParams(t *testing.T, doc openAPIDoc, route string, pathLevel, op json.RawMessage) {
	t.Helper()
	var declared []string
	for _, raw := range []json.RawMessage{pathLevel, op} {
		if raw == nil {
			continue
		}
		var params []openAPIParam
		if strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
			var o struct {
				Parameters []openAPIParam `json:"parameters"`
			}
			require.NoError(t, json.Unmarshal(raw, &o), route)
			params = o.Parameters
		} else {
			require.NoError(t, json.Unmarshal(raw, &params), route)
		}
		for _, p := range params {
			if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
				resolved, found := doc.Components.Parameters[name]
				require.True(t, found, "%s: no parameter %s", route, p.Ref)
				p = resolved
			}
			if p.In == "path" {
				declared = append(declared, p.Name)
			}
		}
	}
	var used []string
	for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(route, -1) {
		used = append(used, m[1])
	}
	require.ElementsMatch(t, used, declared, "%s: path parameters", route)
}

// Each schema lists the JSON fields of the Go type that answers or reads it, no more and no
// fewer, so that a field added to a store type or a request shows up here.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	t.Parallel()
	doc := loadDoc(t)
	types := map[string]any{
		"Pack":                 store.Pack{},
		"PackWithVersions":     packWithVersions{},
		"PackVersion":          store.PackVersion{},
		"RegisteredPack":       store.RegisteredPack{},
		"PackChanges":          store.PackChanges{},
		"ComponentChanges":     store.ComponentChanges{},
		"Action":               store.Action{},
		"Trigger":              store.Trigger{},
		"Rule":                 store.Rule{},
		"Event":                store.Event{},
		"EventCreated":         eventCreated{},
		"Enforcement":          store.Enforcement{},
		"Execution":            store.Execution{},
		"ExecutionDetail":      executionBody{},
		"Attempt":              attemptSummary{},
		"WorkflowView":         store.WorkflowView{},
		"WorkflowTask":         store.WorkflowTaskView{},
		"Worker":               store.Worker{},
		"QueueStats":           store.QueueStats{},
		"QueueGroup":           store.QueueGroup{},
		"Dashboard":            store.Dashboard{},
		"DashboardFailure":     store.DashboardFailure{},
		"DashboardQueue":       store.DashboardQueue{},
		"DashboardWorkers":     store.DashboardWorkers{},
		"DashboardSensors":     store.DashboardSensors{},
		"Concurrency":          pack.Concurrency{},
		"RateLimit":            pack.RateLimit{},
		"Retry":                pack.Retry{},
		"Policy":               policyBody{},
		"PolicyRequest":        policyRequest{},
		"RegisterRequest":      registerRequest{},
		"EventRequest":         eventRequest{},
		"ExecuteRequest":       executeRequest{},
		"RerunRequest":         rerunRequest{},
		"Pagination":           pagination{},
		"LoginRequest":         loginRequest{},
		"RefreshRequest":       refreshRequest{},
		"TokenPair":            tokenPair{},
		"Whoami":               whoamiBody{},
		"Identity":             store.Identity{},
		"IdentityRequest":      identityRequest{},
		"IdentityUpdate":       identityUpdate{},
		"APIToken":             store.APIToken{},
		"TokenRequest":         tokenRequest{},
		"TokenCreated":         tokenCreated{},
		"WebhookSecret":        store.WebhookSecret{},
		"WebhookSecretRequest": webhookSecretRequest{},
		"Key":                  store.Key{},
		"KeyRequest":           keyRequest{},
		"Error":                errorBody{},
		"ErrorDetail":          errorDetail{},
		"ActionRequest":        actionRequest{},
		"TriggerRequest":       triggerRequest{},
		"RuleRequest":          ruleRequest{},
		"StreamExecution":      streamExecution{},
		"StreamEvent":          streamEvent{},
		"StreamInquiry":        streamInquiry{},
		"Inquiry":              store.Inquiry{},
		"RespondRequest":       respondRequest{},
		"Trace":                traceBody{},
		"TraceEvent":           traceEvent{},
		"TraceEnforcement":     traceEnforcement{},
		"TraceExecution":       traceExec{},
	}
	// pack.Policy's file is the loader's, for its error messages; a policy from the store
	// never has one, so the API never answers it.
	never := map[string][]string{"Policy": {"file"}}
	for name, v := range types {
		s, ok := doc.Components.Schemas[name]
		require.True(t, ok, "no schema %s", name)
		want := slices.DeleteFunc(jsonFields(reflect.TypeOf(v)), func(f string) bool { return slices.Contains(never[name], f) })
		require.ElementsMatch(t, want, schemaProperties(t, doc, s), "schema %s against %T", name, v)
	}
}

// jsonFields lists the names encoding/json gives t's fields, embedded structs' included.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

func schemaProperties(t *testing.T, doc openAPIDoc, s openAPISchema) []string {
	t.Helper()
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		resolved, found := doc.Components.Schemas[name]
		require.True(t, found, "no schema %s", s.Ref)
		return schemaProperties(t, doc, resolved)
	}
	var out []string
	for name := range s.Properties {
		out = append(out, name)
	}
	for _, part := range s.AllOf {
		out = append(out, schemaProperties(t, doc, part)...)
	}
	return out
}

// schemaKeywords are the keys an OpenAPI 3.0 schema object may hold. A key outside them is
// most often YAML's doing: an unquoted comma in a flow mapping starts a new key.
var schemaKeywords = []string{"$ref", "type", "format", "description", "title", "default", "enum", "nullable",
	"properties", "required", "additionalProperties", "items", "allOf", "oneOf", "anyOf", "not",
	"minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "example", "readOnly", "writeOnly"}

// Every component schema, nested ones included, holds only schema keywords.
func TestOpenAPISchemaKeywords(t *testing.T) {
	t.Parallel()
	raw, err := openAPIDocument()
	require.NoError(t, err)
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	for name, s := range doc.Components.Schemas {
		checkKeywords(t, name, s)
	}
}

func checkKeywords(t *testing.T, where string, schema any) {
	t.Helper()
	s, ok := schema.(map[string]any)
	if !ok {
		return // additionalProperties may be a boolean
	}
	for k, v := range s {
		require.Contains(t, schemaKeywords, k, "%s: %q is no schema keyword", where, k)
		switch k {
		case "properties":
			for name, p := range v.(map[string]any) {
				checkKeywords(t, where+"."+name, p)
			}
		case "items", "additionalProperties", "not":
			checkKeywords(t, where+"."+k, v)
		case "allOf", "oneOf", "anyOf":
			for i, p := range v.([]any) {
				checkKeywords(t, fmt.Sprintf("%s.%s[%d]", where, k, i), p)
			}
		}
	}
}

// The document is served as JSON, the same document the tests above read.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e, _ := router(t)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	mediaType, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "application/json", mediaType)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	want, err := openAPIDocument()
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(body))
}

// A status code left unquoted in the YAML becomes a map key JSON cannot hold; conversion
// reports it instead of serving a broken document.
func TestOpenAPIJSONRefusesNonStringKeys(t *testing.T) {
	t.Parallel()
	_, err := openAPIJSON([]byte("openapi: 3.0.3\npaths:\n  /x:\n    get:\n      responses:\n        200: {description: ok}\n"))
	require.ErrorContains(t, err, "convert openapi.yaml to JSON")
}
