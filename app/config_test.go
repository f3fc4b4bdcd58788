package app

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/app/database"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func TestParseRoles(t *testing.T) {
	t.Parallel()
	roles, err := ParseRoles("all")
	require.NoError(t, err)
	require.Equal(t, AllRoles, roles)

	roles, err = ParseRoles(" API,executor ,api")
	require.NoError(t, err)
	require.Equal(t, []Role{RoleExecutor, RoleAPI}, roles, "deduplicated, in start order")

	_, err = ParseRoles("executor,shceduler")
	require.EqualError(t, err, `invalid --roles "executor,shceduler": unknown role "shceduler"; valid roles are api, sensor, executor, worker, or all`)
	_, err = ParseRoles("api,")
	require.ErrorContains(t, err, "empty role name")
}

func validConfig() serveConfig {
	return serveConfig{
		rolesFlag:         "all",
		databaseURL:       database.DefaultURL,
		httpAddr:          ":8080",
		shutdownTimeout:   10e9,
		workerName:        "w1",
		workerConcurrency: 8,
		amqpQueueType:     "classic",
		workerHeartbeat:   10e9,
		workerTimeout:     30e9,
		sensorLease:       10 * time.Second,
		workerWaitTimeout: 5 * time.Minute,
		accessTTL:         time.Hour,
		refreshTTL:        7 * 24 * time.Hour,
	}
}

func TestValidateServeConfig(t *testing.T) {
	t.Parallel()
	c := validConfig()
	require.NoError(t, c.validate(), "all roles may use the in-process broker")

	cases := map[string]struct {
		edit func(*serveConfig)
		want string
	}{
		"role without broker": {func(c *serveConfig) { c.rolesFlag = "executor" }, "--roles=executor needs --amqp-url"},
		"three roles":         {func(c *serveConfig) { c.rolesFlag = "api,executor,worker" }, "allowed only with --roles=all"},
		"bad amqp url":        {func(c *serveConfig) { c.amqpURLs = []string{"amqp://guest:pw@a/", "rabbit://guest:pw@x"} }, "--amqp-url: invalid AMQP URL"},
		"bad queue type":      {func(c *serveConfig) { c.amqpQueueType = "stream" }, `--amqp-queue-type: invalid queue type "stream": want classic or quorum`},
		"bad database url":    {func(c *serveConfig) { c.databaseURL = "mysql://x" }, "--database-url: invalid database URL"},
		"zero timeout":        {func(c *serveConfig) { c.shutdownTimeout = 0 }, "invalid --shutdown-timeout"},
		"dotted worker":       {func(c *serveConfig) { c.workerName = "a.b" }, "invalid --worker-name"},
		"no concurrency":      {func(c *serveConfig) { c.workerConcurrency = 0 }, "invalid --worker-concurrency"},
		"short sensor lease":  {func(c *serveConfig) { c.sensorLease = 500 * time.Millisecond }, "invalid --sensor-lease 500ms"},
		"refresh too short":   {func(c *serveConfig) { c.refreshTTL = time.Minute }, "invalid --access-token-ttl 1h0m0s / --refresh-token-ttl 1m0s"},
		"bad retention": {func(c *serveConfig) { c.retainFlags = map[string]*string{store.RetainEvents: ptr("3x")} },
			`invalid --retain-events "3x": want a duration such as 30d, 12h or 90m, or 0 to keep for ever`},
		"negative retention": {func(c *serveConfig) { c.retainFlags = map[string]*string{store.RetainExecutions: ptr("-1h")} }, `invalid --retain-executions "-1h": negative`},
		"bad webhook rate":   {func(c *serveConfig) { c.webhookRateFlag = "10/x" }, `invalid --webhook-rate-limit "10/x" / --webhook-rate-burst 0: want N/s`},
	}
	for name, tc := range cases {
		c := validConfig()
		tc.edit(&c)
		err := c.validate()
		require.ErrorContains(t, err, tc.want, name)
		require.NotContains(t, err.Error(), ":pw@", "%s: a password leaked", name)
	}

	c = validConfig()
	c.rolesFlag = "executor"
	c.amqpURLs = []string{"amqp://guest:guest@localhost:5672/"}
	require.NoError(t, c.validate())
	require.Equal(t, []Role{RoleExecutor}, c.roles)
}

// Several RabbitMQ nodes are given by repeating --amqp-url, as a comma list, or both; the
// environment variable takes a comma list. Not parallel: it sets environment variables.
func TestSeveralAMQPURLs(t *testing.T) {
	urls := func(args []string) []string {
		t.Helper()
		fs := newServeCommand(Streams{}).Flags()
		require.NoError(t, fs.Parse(args))
		require.NoError(t, cli.ApplyEnv(fs))
		got, err := fs.GetStringSlice("amqp-url")
		require.NoError(t, err)
		return got
	}
	a, b, c := "amqp://guest:guest@h1:5672/", "amqp://guest:guest@h2:5672/", "amqp://guest:guest@h3:5672/"
	require.Equal(t, []string{a, b, c}, urls([]string{"--amqp-url=" + a + "," + b, "--amqp-url=" + c}))
	t.Setenv("ATTUNE_AMQP_URL", a+","+b)
	require.Equal(t, []string{a, b}, urls(nil))
	require.Equal(t, []string{c}, urls([]string{"--amqp-url=" + c}), "the flag wins over the environment")
}

// Precedence is flag > environment > default. Not parallel: it sets environment variables.
func TestEnvironmentPrecedence(t *testing.T) {
	t.Setenv("ATTUNE_ROLES", "api")
	t.Setenv("ATTUNE_HTTP_ADDR", ":9999")
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	roles := fs.String("roles", "all", "roles")
	addr := fs.String("http-addr", ":8080", "addr")
	level := fs.String("log-level", "info", "level")
	cli.BindEnv(fs, "roles", "ATTUNE_ROLES")
	cli.BindEnv(fs, "http-addr", "ATTUNE_HTTP_ADDR")
	cli.BindEnv(fs, "log-level", "ATTUNE_LOG_LEVEL")
	require.NoError(t, fs.Parse([]string{"--roles=worker"}))
	require.NoError(t, cli.ApplyEnv(fs))
	require.Equal(t, "worker", *roles, "the flag wins over the environment")
	require.Equal(t, ":9999", *addr, "the environment wins over the default")
	require.Equal(t, "info", *level, "the default stands when neither is set")
	require.True(t, strings.HasSuffix(fs.Lookup("roles").Usage, "(env ATTUNE_ROLES)"))

	t.Setenv("ATTUNE_SHUTDOWN_TIMEOUT", "soon")
	fs2 := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs2.Duration("shutdown-timeout", 0, "timeout")
	cli.BindEnv(fs2, "shutdown-timeout", "ATTUNE_SHUTDOWN_TIMEOUT")
	err := cli.ApplyEnv(fs2)
	require.ErrorContains(t, err, `invalid ATTUNE_SHUTDOWN_TIMEOUT="soon"`)
	require.ErrorContains(t, err, `invalid duration`)
}

func ptr[T any](v T) *T { return &v }

func TestRetentionSettings(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "0": 0, "0d": 0, "12h": 12 * time.Hour, "90m": 90 * time.Minute, "1h30m": 90 * time.Minute} {
		got, err := parseRetention(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "d", "1.5d", "-2d", "30", "30 d", "forever"} {
		_, err := parseRetention(in)
		require.Error(t, err, in)
	}
	c := validConfig()
	require.NoError(t, c.validate())
	require.Equal(t, map[string]time.Duration{store.RetainExecutions: 720 * time.Hour, store.RetainEnforcements: 720 * time.Hour,
		store.RetainEvents: 720 * time.Hour, store.RetainAudit: 365 * 24 * time.Hour}, c.retain, "a month of each by default, a year of audit")

	for in, want := range map[[2]string]api.WebhookRate{
		{"", "0"}: {}, {"10/s", "0"}: {PerSecond: 10, Burst: 10}, {"600/m", "5"}: {PerSecond: 10, Burst: 5}, {"36/h", "0"}: {PerSecond: 0.01, Burst: 36},
	} {
		burst, _ := strconv.Atoi(in[1])
		got, err := parseWebhookRate(in[0], burst)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"0/s", "10", "10/d", "x/s", "-1/s"} {
		_, err := parseWebhookRate(in, 0)
		require.Error(t, err, in)
	}
	_, err := parseWebhookRate("", 3)
	require.ErrorContains(t, err, "a burst needs a rate")
}
