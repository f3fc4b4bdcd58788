package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"
)

// openAPIYAML is the API's OpenAPI document. It is YAML because people edit it by hand, and it
// is embedded so that the document served is always the one built with these routes;
// openapi_test.go holds the two together.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIDocument is the document as the JSON clients fetch, converted once.
var openAPIDocument = sync.OnceValues(func() ([]byte, error) { return openAPIJSON(openAPIYAML) })

func openAPIJSON(src []byte) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		// yaml.v3 decodes a mapping with a non-string key, such as an unquoted status code,
		// into a map JSON cannot hold.
		return nil, fmt.Errorf("convert openapi.yaml to JSON: %w", err)
	}
	return out, nil
}

func (m *Module) openAPI(c echo.Context) error {
	doc, err := openAPIDocument()
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, doc)
}
