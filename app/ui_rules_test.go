package app_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// uiRulesTarball writes files (path → content; .sh files executable) as a .tar.gz, the
// shape `attune pack upload` sends.
func uiRulesTarball(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		mode := int64(0o644)
		if filepath.Ext(name) == ".sh" {
			mode = 0o755
		}
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	path := filepath.Join(t.TempDir(), "uitest.tar.gz")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return path
}

// fieldErrorIs waits until the form field holding the input shows an error with text.
func fieldErrorIs(input, text string) browserStep {
	return until(fmt.Sprintf(`(document.querySelector(%q)?.closest('.field')?.querySelector('.field-error')?.innerText || '').includes(%q)`, input, text))
}

// An operator's rule screens: a rule disabled from the list (and the API agrees), its edit
// form refused by the API with the error at the field at fault (a condition, then an action
// parameter), saved once fixed, and enabled again from its page; a rule created from the
// form, refused first for a pack that does not exist. Then the triggers screen
// with a webhook rule's address, and the packs: demo's stored version, a .tar.gz uploaded
// from a file input with what it added, and that pack deleted.
func TestUIRules(t *testing.T) {
	t.Parallel()
	s, tab := adminUI(t)

	const rule = "demo.on_typed"
	row := `([...document.querySelectorAll('tbody tr')].find(r => r.innerText.includes('demo.on_typed'))?.innerText || '')`
	browse(t, tab,
		s.open("/rules?pack=demo"),
		waitText(`tbody`, rule),
		waitGone(`tbody`, "examples."),
		chromedp.Click(chromedp.CSS(`button[aria-label="Disable demo.on_typed"]`)),
		until(row+`.includes('disabled')`),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Enable demo.on_typed"]`)),
	)
	got := s.apiCall(t, http.MethodGet, "/api/v1/rules/"+rule, nil, http.StatusOK)
	require.Equal(t, false, got["enabled"], "the API agrees: disabled")
	screen(t, tab, "rules")
	screen(t, tab, "rules-phone")
	browse(t, tab,
		s.open("/rules?enabled=false"),
		waitText(`tbody`, rule),
		waitGone(`tbody`, "demo.on_webhook"),
	)

	// The API refuses the condition and names the field: the form shows it there.
	browse(t, tab,
		s.open("/rules/"+rule),
		until(`document.querySelector('#action_params-count')?.value === '{{ event.payload.body.count }}'`),
		fill(`#rule-conditions`, `{"field": "body.count", "operator": "resembles", "value": 1}`),
		clickText(`button[type=submit]`, "Save"),
		fieldErrorIs(`#rule-conditions`, `Unknown operator "resembles"`),
	)
	// Then the action's parameter: count is an integer.
	browse(t, tab,
		fill(`#rule-conditions`, `{"field": "body.count", "operator": "greaterthan", "value": 1}`),
		fill(`#action_params-count`, "three"),
		clickText(`button[type=submit]`, "Save"),
		fieldErrorIs(`#action_params-count`, `Want integer, got "three"`),
		until(`!document.querySelector('#rule-conditions').closest('.field').querySelector('.field-error')`),
	)
	screen(t, tab, "rule-edit")
	screen(t, tab, "rule-edit-phone")
	browse(t, tab,
		fill(`#action_params-count`, "{{ event.payload.body.count }}"),
		fill(`#action_params-name`, "n-{{ event.payload.body.name }}!"),
		clickText(`button[type=submit]`, "Save"),
		waitText(`.notice`, "Saved."),
		until(`!document.querySelector('.field-error')`),
	)
	got = s.apiCall(t, http.MethodGet, "/api/v1/rules/"+rule, nil, http.StatusOK)
	require.Equal(t, map[string]any{"field": "body.count", "operator": "greaterthan", "value": float64(1)}, got["conditions"])
	require.Equal(t, map[string]any{"count": "{{ event.payload.body.count }}", "name": "n-{{ event.payload.body.name }}!"}, got["action_params"])
	require.Equal(t, false, got["enabled"], "saving keeps the rule disabled, as the form showed it")
	browse(t, tab,
		chromedp.Click(chromedp.CSS(`button[aria-label="Enable demo.on_typed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Disable demo.on_typed"]`)),
		waitText(`dl.props`, "enabled"),
	)
	got = s.apiCall(t, http.MethodGet, "/api/v1/rules/"+rule, nil, http.StatusOK)
	require.Equal(t, true, got["enabled"], "the API agrees: enabled again")

	// A new rule from the form: the pack its ref names must exist, said at the ref.
	browse(t, tab,
		s.open("/rules"),
		clickText(`a`, "New rule"),
		fill(`#rule-ref`, "nope.made_in_ui"),
		chromedp.WaitVisible(chromedp.CSS(`#trigger_params-url`)),
		fill(`#trigger_params-url`, "made"),
		chromedp.WaitVisible(chromedp.CSS(`#action_params-message`)),
		fill(`#action_params-message`, "{{ event.payload.body.text }}"),
		clickText(`button[type=submit]`, "Create rule"),
		fieldErrorIs(`#rule-ref`, `No pack "nope"`),
		fill(`#rule-ref`, "demo.made_in_ui"),
		clickText(`button[type=submit]`, "Create rule"),
		until(`location.pathname === '/rules/demo.made_in_ui'`),
		waitText(`dl.props`, "/api/v1/webhooks/made"),
	)
	require.Equal(t, "POST "+s.base+"/api/v1/webhooks/made", evaluate[string](t, tab, `document.querySelector('dl.props .webhook-url').innerText`),
		"the address to post to, on this server")
	got = s.apiCall(t, http.MethodGet, "/api/v1/rules/demo.made_in_ui", nil, http.StatusOK)
	require.Equal(t, map[string]any{"message": "{{ event.payload.body.text }}"}, got["action_params"])
	require.Equal(t, true, got["enabled"])

	// Triggers: the webhook rules' addresses.
	browse(t, tab,
		s.open("/triggers"),
		waitText(`tbody`, "core.intervaltimer"),
		waitText(`.webhook-url`, "/api/v1/webhooks/typed"),
	)
	screen(t, tab, "triggers")
	browse(t, tab,
		s.open("/triggers?pack=demo"),
		waitText(`tbody`, "demo.order"),
		waitGone(`tbody`, "core.webhook"),
	)

	// Packs: demo's stored version is current.
	browse(t, tab,
		s.open("/packs"),
		waitText(`tbody`, "0.1.0"),
		s.open("/packs/demo"),
		waitText(`tbody`, "current"),
		waitText(`.pack-contents`, rule),
	)
	archive := uiRulesTarball(t, map[string]string{
		"uitest/pack.yaml":          "ref: uitest\nlabel: UI test\nversion: \"1.2.3\"\n",
		"uitest/actions/hi.yaml":    "ref: uitest.hi\nrunner_type: shell\nentry_point: hi.sh\n",
		"uitest/actions/hi.sh":      "#!/bin/sh\necho hi\n",
		"uitest/rules/on_hook.yaml": "ref: uitest.on_hook\ntrigger_ref: core.webhook\ntrigger_params:\n  url: uitest\naction_ref: uitest.hi\n",
	})
	browse(t, tab,
		s.open("/packs"),
		chromedp.SetUploadFiles(chromedp.CSS(`#pack-file`), []string{archive}),
		clickText(`button[type=submit]`, "Upload"),
		waitText(`.pack-changes`, "uitest added"),
		waitText(`.pack-changes`, "uitest.on_hook"),
		waitText(`tbody`, "1.2.3"),
	)
	screen(t, tab, "packs")
	screen(t, tab, "packs-phone")
	s.apiCall(t, http.MethodGet, "/api/v1/packs/uitest", nil, http.StatusOK)
	browse(t, tab,
		s.open("/packs/uitest"),
		waitText(`.pack-contents`, "uitest.hi"),
		clickText(`button`, "Delete"),
		clickText(`button`, "Yes, delete"),
		until(`location.pathname === '/packs'`),
		waitText(`tbody`, "demo"),
		waitGone(`tbody`, "uitest"),
	)
	s.apiCall(t, http.MethodGet, "/api/v1/packs/uitest", nil, http.StatusNotFound)
}
