package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
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

// squeeze makes a table's padding one space, and none at the ends of lines.
func squeeze(table string) string {
	return strings.ReplaceAll(regexp.MustCompile(`[ \t]+`).ReplaceAllString(table, " "), " \n", "\n")
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
	dbURL := storetest.NewDatabase(t)
	p := startBareOn(t, dbURL)

	t.Run("EventCreate", func(t *testing.T) {
		t.Parallel()
		_, stderr, code := p.cli(t, "rule", "create", "-f", writeFile(t, "on_greet.yaml",
			"ref: hooks.on_greet\ntrigger_ref: core.webhook\ntrigger_params: {url: greet}\naction_ref: core.echo\n"+
				"action_params: {message: \"{{ event.payload.body.name }}\"}\n"))
		require.Equal(t, 0, code, stderr)
		created := cliJSON(t, p, 0, "event", "create", "core.webhook", "--payload", `{"url": "greet", "headers": {}, "body": {"name": "Ada"}}`)
		event := cliJSON(t, p, 0, "event", "show", strconv.FormatInt(id(t, created, "event_id"), 10))
		require.Equal(t, "core.webhook", event["trigger_ref"])
		require.Equal(t, "api", event["source"])
		execID := p.executionOf(t, "hooks.on_greet", id(t, created, "event_id"))
		require.Contains(t, p.waitExecution(t, execID)["result"].(map[string]any)["stdout"], "Ada")

		// From a YAML file, and from stdin.
		file := writeFile(t, "event.yaml", "url: greet\nheaders: {}\nbody: {name: Bo}\n")
		created = cliJSON(t, p, 0, "event", "create", "core.webhook", "--payload", "@"+file)
		require.Contains(t, p.waitExecution(t, p.executionOf(t, "hooks.on_greet", id(t, created, "event_id")))["result"].(map[string]any)["stdout"], "Bo")
		stdout, stderr, code := runAttuneWith(t, `{"url": "greet", "body": {"name": "Cy"}}`, []string{"ATTUNE_TOKEN=" + p.authToken(t)},
			"event", "create", "core.webhook", "--payload", "-", "--api-url", "http://"+p.addr)
		require.Equal(t, 0, code, stderr)
		require.Regexp(t, `(?m)^event_id\s+\d+$`, stdout)

		// The server checks the payload against the trigger's output schema.
		_, stderr, code = p.cli(t, "event", "create", "core.webhook", "--payload", `{"url": 3}`)
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), "(400 Bad Request)")
		_, stderr, code = p.cli(t, "event", "create", "hooks.nothing")
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), `no trigger "hooks.nothing"`)
	})

	t.Run("EnforcementReason", func(t *testing.T) {
		t.Parallel()
		_, stderr, code := p.cli(t, "rule", "create", "-f", writeFile(t, "on_broken.yaml",
			"ref: hooks.on_broken\ntrigger_ref: core.webhook\ntrigger_params: {url: broken}\naction_ref: core.echo\n"+
				"action_params: {message: \"{{ event.payload.body.n * 2 }}\"}\n"))
		require.Equal(t, 0, code, stderr)
		p.webhook(t, "broken", map[string]any{"n": "x"})
		var enfs []map[string]any
		require.Eventually(t, func() bool {
			enfs = cliList(t, p, "enforcement", "list", "--rule", "hooks.on_broken")
			return len(enfs) == 1 && enfs[0]["reason"] != nil
		}, time.Minute, 50*time.Millisecond, "no enforcement with a reason: %v", enfs)
		stdout, stderr, code := p.cli(t, "enforcement", "list", "--rule", "hooks.on_broken")
		require.Equal(t, 0, code, stderr)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		require.Equal(t, []string{"ID", "RULE", "EVENT", "STATUS", "CREATED", "REASON"}, strings.Fields(lines[0]))
		require.Len(t, lines, 2)
		require.Regexp(t, `^\d+\s+hooks\.on_broken\s+\d+\s+\w+\s+\S+\s+rule hooks\.on_broken: render action_params`, lines[1])
	})

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

	t.Run("PolicyCreateListDelete", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		for name, text := range map[string]string{
			"pack.yaml":          "ref: limits\n",
			"policies/cap.yaml":  "ref: limits.cap\naction_ref: core.echo\nconcurrency: {limit: 4}\n",
			"policies/pack.yaml": "ref: limits.whole\npack_ref: limits\nconcurrency: {limit: 9}\n",
		} {
			require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
		}
		_, stderr, code := p.cli(t, "pack", "register", dir)
		require.Equal(t, 0, code, stderr)

		created := cliJSON(t, p, 0, "policy", "create", "-f", writeFile(t, "one_noop.yaml",
			"# at most one core.noop at a time\nref: hooks.one_noop\naction_ref: core.noop\nconcurrency:\n  limit: 1\n"))
		require.Equal(t, "hooks.one_noop", created["ref"])
		require.Nil(t, created["source_pack"])
		stdout, stderr, code := runAttuneWith(t, `{"ref": "hooks.slow_hooks", "pack_ref": "hooks", "rate_limit": {"max_executions": 1000, "window_seconds": 1}}`,
			[]string{"ATTUNE_TOKEN=" + p.authToken(t)}, "policy", "create", "-f", "-", "--api-url", "http://"+p.addr)
		require.Equal(t, 0, code, stderr)
		require.Regexp(t, `(?m)^ref\s+hooks\.slow_hooks$`, stdout)

		stdout, stderr, code = p.cli(t, "policy", "list")
		require.Equal(t, 0, code, stderr)
		require.True(t, strings.HasPrefix(squeeze(stdout), "REF ACTION ALL OF PACK PACK ENABLED\n"), stdout)
		require.Regexp(t, `(?m)^limits\.cap\s+core\.echo\s+limits\s+true$`, stdout, "PACK is the pack it came with")
		require.Regexp(t, `(?m)^limits\.whole\s+limits\s+limits\s+true$`, stdout)
		require.Regexp(t, `(?m)^hooks\.one_noop\s+core\.noop\s+true$`, stdout, "one made through the API has none")
		require.Regexp(t, `(?m)^hooks\.slow_hooks\s+hooks\s+true$`, stdout)

		_, stderr, code = p.cli(t, "policy", "create", "-f", writeFile(t, "typo.yaml", "ref: hooks.typo\naction_ref: core.noop\nconcurency: {limit: 1}\n"))
		require.Equal(t, 1, code)
		require.Regexp(t, `^attune: read policy \S+/typo\.yaml: line 3: unknown key "concurency"`, requireOneErrorLine(t, stderr))
		_, stderr, code = p.cli(t, "policy", "create", "-f", writeFile(t, "list.yaml", "- ref: hooks.x\n"))
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), "want an object, got an array")

		for _, ref := range []string{"hooks.one_noop", "hooks.slow_hooks"} {
			stdout, stderr, code = p.cli(t, "policy", "delete", ref)
			require.Equal(t, 0, code, stderr)
			require.Equal(t, "deleted policy "+ref+"\n", stdout)
			_, stderr, code = p.cli(t, "policy", "show", ref)
			require.Equal(t, 1, code)
			require.Contains(t, requireOneErrorLine(t, stderr), "(404 Not Found)")
		}
		_, stderr, code = p.cli(t, "policy", "delete", "hooks.one_noop")
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), "(404 Not Found)")
	})

	t.Run("ActionQueue", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := p.cli(t, "action", "queue", "core.http_request")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "FIELD VALUE\naction_ref core.http_request\nlimit none\nactive 0\nqueued 0\noldest_queued_at\n",
			squeeze(stdout), "no policy, nothing running")

		var ids []int64
		execute := func(action, param string) int64 {
			ids = append(ids, id(t, cliJSON(t, p, 0, "action", "execute", action, "--param", param), "id"))
			return ids[len(ids)-1]
		}
		t.Cleanup(func() {
			for _, id := range ids {
				p.cli(t, "execution", "cancel", strconv.FormatInt(id, 10))
			}
		})

		// The README's policy: one core.sleep at a time, the next waits its turn.
		require.Equal(t, "demo.one_sleep", cliJSON(t, p, 0, "policy", "create", "-f", "../testdata/policies/one_sleep.yaml")["ref"])
		first := execute("core.sleep", "seconds=60")
		execute("core.sleep", "seconds=60")
		cliWaitStatus(t, p, first, "running")
		stdout, stderr, code = p.cli(t, "action", "queue", "core.sleep")
		require.Equal(t, 0, code, stderr)
		require.Regexp(t, `^FIELD VALUE\naction_ref core\.sleep\nlimit 1\nactive 1\nqueued 1\noldest_queued_at \d{4}-\d\d-\d\dT\S+\n$`, squeeze(stdout))

		// One core.local at a time for each cmd: two run, one waits, each group counted apart.
		cliJSON(t, p, 0, "policy", "create", "-f", writeFile(t, "local.yaml",
			"ref: hooks.one_local_each\naction_ref: core.local\nconcurrency: {limit: 1, parameters: [cmd]}\n"))
		first = execute("core.local", "cmd=sleep 60")
		execute("core.local", "cmd=sleep 60")
		other := execute("core.local", "cmd=sleep 61")
		cliWaitStatus(t, p, first, "running")
		cliWaitStatus(t, p, other, "running")
		// RerunWait runs core.local alongside, each of its commands a group of its own that
		// never queues: the lines of this subtest's groups are looked for among them.
		stdout, stderr, code = p.cli(t, "action", "queue", "core.local")
		require.Equal(t, 0, code, stderr)
		require.Regexp(t, `^FIELD VALUE
action_ref core\.local
limit 1
active \d+
queued 1
oldest_queued_at \d{4}-\d\d-\d\dT\S+

GROUP ACTIVE QUEUED
`, squeeze(stdout))
		require.Contains(t, squeeze(stdout), "\n[\"sleep 60\"] 1 1\n")
		require.Contains(t, squeeze(stdout), "\n[\"sleep 61\"] 1 0\n")
		stats := cliJSON(t, p, 0, "action", "queue", "core.local")
		require.EqualValues(t, 1, stats["queued"])
		ours := 0
		for _, g := range stats["groups"].([]any) {
			if key := fmt.Sprint(g.(map[string]any)["key"]); strings.Contains(key, "sleep 6") {
				ours++
			}
		}
		require.Equal(t, 2, ours, "%v", stats["groups"])

		_, stderr, code = p.cli(t, "action", "queue", "core.nothing")
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), `no action "core.nothing" (404 Not Found)`)
	})

	t.Run("WebhookSecret", func(t *testing.T) {
		t.Parallel()
		const secret = "s3cr3t-never-shown-0123456789"
		asAdmin := []string{"ATTUNE_TOKEN=" + p.authToken(t)}
		apiURL := "http://" + p.addr
		stdout, stderr, code := runAttuneWith(t, secret+"\n", asAdmin, "webhook-secret", "set", "signed", "--api-url", apiURL)
		require.Equal(t, 0, code, stderr)
		require.Regexp(t, `(?m)^url\s+signed$`, stdout)
		status, out := p.post(t, "/api/v1/webhooks/signed", map[string]any{})
		require.Equal(t, http.StatusUnauthorized, status, "the url takes signed bodies only: %v", out)

		stdout, stderr, code = p.cli(t, "webhook-secret", "list")
		require.Equal(t, 0, code, stderr)
		require.Regexp(t, `(?m)^URL\s+CREATED\s+UPDATED\n(.*\n)*signed\s`, stdout)
		listed := cliList(t, p, "webhook-secret", "list")
		require.NotEmpty(t, listed)

		// Too short: the server's refusal does not quote it either.
		_, stderr, code = runAttuneWith(t, "short\n", asAdmin, "webhook-secret", "set", "signed", "--api-url", apiURL)
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), "at least 16 characters (400 Bad Request)")
		require.NotContains(t, stderr, "short")
		_, stderr, code = runAttuneWith(t, "", asAdmin, "webhook-secret", "set", "signed", "--api-url", apiURL)
		require.Equal(t, 2, code)
		require.Contains(t, requireOneErrorLine(t, stderr), "no secret on stdin")

		stdout, stderr, code = p.cli(t, "webhook-secret", "delete", "signed")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "deleted webhook secret signed\n", stdout)
		status, out = p.post(t, "/api/v1/webhooks/signed", map[string]any{})
		// No longer registered, and no rule listens on it (modules/api's webhook tests show a url
		// a rule listens on taking unsigned bodies again).
		require.Equal(t, http.StatusNotFound, status, "unregistered: %v", out)
		_, stderr, code = p.cli(t, "webhook-secret", "delete", "signed")
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), "(404 Not Found)")

		// Neither the commands above, nor the server's log, ever showed it.
		for _, args := range [][]string{{"webhook-secret", "list", "-o", "json"}, {"webhook-secret", "list", "-o", "yaml"}} {
			stdout, stderr, _ = p.cli(t, args...)
			require.NotContains(t, stdout+stderr, secret)
		}
		require.NotContains(t, p.output(), secret)
	})

	t.Run("WorkerDelete", func(t *testing.T) {
		t.Parallel()
		pool, err := pgxpool.New(context.Background(), dbURL)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		st := store.NewStore(pool)
		_, err = st.WorkerRegister(context.Background(), store.WorkerRegisterParams{Name: "gone", Runners: []string{"shell"}, Concurrency: 1, Host: "box"})
		require.NoError(t, err)
		require.NoError(t, st.WorkerSetInactive(context.Background(), "gone"))

		stdout, stderr, code := p.cli(t, "worker", "delete", "gone")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "deleted worker gone\n", stdout)
		_, stderr, code = p.cli(t, "worker", "show", "gone")
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), `no worker "gone" (404 Not Found)`)

		// The server's own worker heartbeats: its record stays.
		var live string
		for _, w := range cliList(t, p, "worker", "list") {
			if w["status"] == "active" {
				live = w["name"].(string)
			}
		}
		require.NotEmpty(t, live)
		_, stderr, code = p.cli(t, "worker", "delete", live)
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), fmt.Sprintf("worker %s is alive", live))
		require.Contains(t, stderr, "(409 Conflict)")
	})
}

// TestCLISinceInvalid: a --since that is neither a time back from now nor an RFC 3339 time is
// refused saying what is wanted, before any request.
func TestCLISinceInvalid(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runAttune(t, "enforcement", "list", "--since", "yesterday", "--api-url", "http://127.0.0.1:1")
	require.Equal(t, 2, code)
	require.Empty(t, stdout)
	require.Equal(t, `attune: invalid --since "yesterday": want a time back from now such as 10m, 2h or 7d, or an RFC 3339 time such as 2026-11-23T09:00:00Z`+"\n", stderr)
}
