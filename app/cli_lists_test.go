package app_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cliList runs a list command against p's API as the first admin with -o json and decodes it.
func cliList(t *testing.T, p *process, args ...string) []map[string]any {
	t.Helper()
	stdout, stderr, code := p.cli(t, append(args, "-o", "json")...)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	require.Empty(t, stderr)
	var out []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &out), stdout)
	return out
}

// idsOf are the ids of a list's items, in its order.
func idsOf(t *testing.T, items []map[string]any) []int64 {
	t.Helper()
	ids := make([]int64, len(items))
	for i, item := range items {
		ids[i] = id(t, item, "id")
	}
	return ids
}

// writeFile writes text to name in a directory of the test's and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// TestCLIListsPageAndWindow: the lists of what happens read past the API's page of 100 as far
// as --limit says, newest first, and --since and --until bound them by creation time.
func TestCLIListsPageAndWindow(t *testing.T) {
	t.Parallel()
	p := startBare(t)
	_, stderr, code := p.cli(t, "rule", "create", "-f", writeFile(t, "on_hit.yaml",
		"ref: hooks.on_hit\ntrigger_ref: core.webhook\ntrigger_params: {url: hit}\naction_ref: core.noop\n"))
	require.Equal(t, 0, code, stderr)
	const fired = 150
	for i := range fired {
		status, out := p.post(t, "/api/v1/webhooks/hit", map[string]any{"n": i})
		require.Equal(t, http.StatusAccepted, status, out)
	}
	waitExecutions := func(n int) {
		t.Helper()
		var total any
		require.Eventually(t, func() bool {
			_, body := p.get(t, "/api/v1/executions?action_ref=core.noop&status=completed&per_page=1")
			total = body["pagination"].(map[string]any)["total_items"]
			return total == float64(n)
		}, 2*time.Minute, 50*time.Millisecond, "want %d executions completed, have %v", n, total)
	}
	waitExecutions(fired)

	for _, noun := range []string{"event", "enforcement", "execution"} {
		all := idsOf(t, cliList(t, p, noun, "list", "--limit", "150"))
		require.Len(t, all, fired, noun)
		for i := 1; i < len(all); i++ {
			require.Greater(t, all[i-1], all[i], "%s: newest first, each once", noun)
		}
		require.Equal(t, all[:120], idsOf(t, cliList(t, p, noun, "list", "--limit", "120")), noun)
		require.Equal(t, all[:50], idsOf(t, cliList(t, p, noun, "list")), "%s: 50 by default", noun)
	}

	// The newest of each, then two more events: --since the newest's creation holds what was
	// created then or after, the two new ones included, and --until it what came before. (An
	// executor creates enforcements and executions in batches, which share a creation time.)
	newest := map[string]map[string]any{}
	for _, noun := range []string{"event", "enforcement", "execution"} {
		newest[noun] = cliList(t, p, noun, "list", "--limit", "1")[0]
	}
	p.webhook(t, "hit", map[string]any{"n": "late"})
	p.webhook(t, "hit", map[string]any{"n": "later"})
	waitExecutions(fired + 2)
	for noun, last := range newest {
		since := last["created"].(string)
		bound, err := time.Parse(time.RFC3339Nano, since)
		require.NoError(t, err)
		var after, before []int64
		all := cliList(t, p, noun, "list", "--limit", "500")
		require.Len(t, all, fired+2, noun)
		for _, item := range all {
			created, err := time.Parse(time.RFC3339Nano, item["created"].(string))
			require.NoError(t, err)
			if created.Before(bound) {
				before = append(before, id(t, item, "id"))
			} else {
				after = append(after, id(t, item, "id"))
			}
		}
		require.GreaterOrEqual(t, len(after), 3, "%s: the newest and the two after it", noun)
		require.NotEmpty(t, before, noun)
		require.Equal(t, after, idsOf(t, cliList(t, p, noun, "list", "--since", since, "--limit", "500")), "%s since %s", noun, since)
		require.Equal(t, before, idsOf(t, cliList(t, p, noun, "list", "--until", since, "--limit", "500")), "%s until %s", noun, since)
		require.Equal(t, idsOf(t, all), idsOf(t, cliList(t, p, noun, "list", "--since", "1h", "--limit", "500")), noun)
	}
	require.Empty(t, cliList(t, p, "event", "list", "--since", time.Now().Add(time.Hour).Format(time.RFC3339)))

	// The filters each list takes, with the window.
	require.Len(t, cliList(t, p, "enforcement", "list", "--rule", "hooks.on_hit", "--since", "1h", "--limit", "500"), fired+2)
	require.Empty(t, cliList(t, p, "enforcement", "list", "--rule", "hooks.none"))
	require.Len(t, cliList(t, p, "event", "list", "--trigger", "core.webhook", "--limit", "200"), fired+2)
	require.Empty(t, cliList(t, p, "event", "list", "--trigger", "core.intervaltimer"))
}

// TestCLIListPagesKeepEachRowOnce: a row created while a list is read page by page pushes the
// rows below it down, so the next page starts with one already read; it is listed once, and
// the list still holds as many as --limit says.
func TestCLIListPagesKeepEachRowOnce(t *testing.T) {
	t.Parallel()
	newest := 250 // the list is newest..1, and grows by one after each page is read
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		var items []map[string]any
		for id := newest - (page-1)*size; id > 0 && len(items) < size; id-- {
			items = append(items, map[string]any{"id": id})
		}
		body := map[string]any{"data": items, "pagination": map[string]any{
			"page": page, "page_size": size, "total_items": newest, "total_pages": (newest + size - 1) / size}}
		newest++
		require.NoError(t, json.NewEncoder(w).Encode(body))
	}))
	t.Cleanup(srv.Close)
	stdout, stderr, code := runAttune(t, "event", "list", "--limit", "150", "-o", "json", "--api-url", srv.URL)
	require.Equal(t, 0, code, stderr)
	var items []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &items), stdout)
	want := make([]int64, 150)
	for i := range want {
		want[i] = int64(250 - i)
	}
	require.Equal(t, want, idsOf(t, items))
}

// TestCLIMoreCommands runs the commands for what the API did without a CLI, and the columns
// and flags the lists gained, against one real server.
func TestCLIMoreCommands(t *testing.T) {
	t.Parallel()
	p := startBare(t)

	t.Run("RerunWait", func(t *testing.T) {
		t.Parallel()
		first := cliJSON(t, p, 0, "action", "execute", "core.local", "--param", "cmd=echo once", "--wait")
		firstID := strconv.FormatInt(id(t, first, "id"), 10)
		again := cliJSON(t, p, 0, "execution", "rerun", firstID, "--wait")
		require.Equal(t, "completed", again["status"])
		require.Equal(t, float64(id(t, first, "id")), again["parent_id"])
		require.Contains(t, again["result"].(map[string]any)["stdout"], "once")

		failed := cliJSON(t, p, 1, "execution", "rerun", firstID, "--param", "cmd=exit 3", "--wait")
		require.Equal(t, "failed", failed["status"])
		require.Equal(t, float64(id(t, first, "id")), failed["parent_id"])
	})
}
