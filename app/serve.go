package app

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/app/database"
	"github.com/attune-go/attune/broker/amqpbroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
)

// serveConfig is everything `attune serve` is told.
type serveConfig struct {
	roles           []Role
	rolesFlag       string
	databaseURL     string
	amqpURLs        []string
	amqpNamespace   string
	amqpQueueType   string
	httpAddr        string
	metrics         bool
	migrate         bool
	shutdownTimeout time.Duration
	workerName      string
	// workerNameGenerated says the worker's name was made up for this process alone.
	workerNameGenerated bool
	workerConcurrency   int
	packsDir            string
	auth                bool
	adminPassword       string
	accessTTL           time.Duration
	refreshTTL          time.Duration
	workerHeartbeat     time.Duration
	sensorLease         time.Duration
	sensorPackCache     string
	workerTimeout       time.Duration
	workerAPIURL        string
	workerLabelsFlag    string
	workerPackCache     string
	workerLabels        store.Labels
	workerWaitTimeout   time.Duration
	logs                logOptions
	keys                keyringConfig
	// retainFlags holds each kind's --retain-* as given, retain what it says (0: for ever).
	retainFlags     map[string]*string
	retain          map[string]time.Duration
	webhookRateFlag string
	webhookBurst    int
	webhookRate     api.WebhookRate
}

func registerLogFlags(fs *pflag.FlagSet, o *logOptions) {
	fs.StringVar(&o.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.format, "log-format", "text", "log format: text or json")
	cli.BindEnv(fs, "log-level", "ATTUNE_LOG_LEVEL")
	cli.BindEnv(fs, "log-format", "ATTUNE_LOG_FORMAT")
}

func newServeCommand(streams Streams) *cobra.Command {
	var cfg serveConfig
	var db database.Flags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Attune's roles: api, sensor, executor, worker",
		Long: `Runs the chosen roles in this process over one PostgreSQL pool, one broker connection and
one HTTP server (GET /healthz, GET /readyz, GET /metrics, and the API when the api role runs).

Every flag can also be set through the environment variable named in its help; a flag given on
the command line wins over the environment, which wins over the default.`,
		Example: `  attune serve                                   # every role, in-process broker
  attune serve --roles=executor --amqp-url=amqp://guest:guest@localhost:5672/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.ApplyEnv(cmd.Flags()); err != nil {
				return cli.Usage(err)
			}
			cfg.databaseURL = db.URL
			cfg.workerNameGenerated = !cmd.Flags().Changed("worker-name")
			// A password has no flag: a flag would show in ps and in shell history.
			cfg.adminPassword = os.Getenv("ATTUNE_ADMIN_PASSWORD")
			if err := cfg.validate(); err != nil {
				return cli.Usage(err)
			}
			logger, err := newLogger(cfg.logs, streams.Err)
			if err != nil {
				return cli.Usage(err)
			}
			return serve(cmd.Context(), cfg, logger)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.rolesFlag, "roles", "all", "roles to run: all, or a comma list of api, sensor, executor, worker")
	db.Register(fs)
	fs.StringSliceVar(&cfg.amqpURLs, "amqp-url", nil, "RabbitMQ URL; several (repeated or a comma list) name nodes of one cluster, tried in turn when the connection drops; empty runs the in-process broker, which needs --roles=all")
	fs.StringVar(&cfg.amqpNamespace, "amqp-namespace", "", "prefix for exchange and queue names, so that several installations or test runs can share one RabbitMQ vhost")
	fs.StringVar(&cfg.amqpQueueType, "amqp-queue-type", string(amqpbroker.QueueClassic), "type of the durable RabbitMQ queues: classic (one node) or quorum (replicated over a cluster); every process of an installation must use the same")
	fs.StringVar(&cfg.httpAddr, "http-addr", ":8080", "address of the HTTP server (health, readiness, API)")
	fs.BoolVar(&cfg.metrics, "metrics", true, "count what this process does and serve it at GET /metrics on --http-addr, in Prometheus's text format (docs/operations.md)")
	fs.BoolVar(&cfg.migrate, "migrate", true, "apply pending database migrations at start; when false, refuse to start while any are pending")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight work may take to drain after SIGINT or SIGTERM")
	fs.StringVar(&cfg.workerName, "worker-name", defaultWorkerName(), "name this process registers under when it runs the worker role; unique per worker")
	fs.IntVar(&cfg.workerConcurrency, "worker-concurrency", 8, "actions one worker runs at once")
	fs.DurationVar(&cfg.workerHeartbeat, "worker-heartbeat", 10*time.Second, "how often a worker says it is alive")
	fs.DurationVar(&cfg.workerTimeout, "worker-timeout", 30*time.Second, "how long after its last heartbeat a worker is dead: the executor abandons its executions, and the API lets its record be deleted")
	fs.StringVar(&cfg.workerAPIURL, "worker-api-url", "", "the API's address the worker gives each shell action as ATTUNE_API_URL, with ATTUNE_TOKEN, to write keys back; default: this process's own API when it runs the api role, else http://localhost:8080")
	fs.StringVar(&cfg.workerLabelsFlag, "worker-labels", "", "labels of this worker, k=v,k2=v2: it also runs the actions whose worker_selector they satisfy (docs/routing.md)")
	fs.StringVar(&cfg.workerPackCache, "worker-pack-cache", "", "directory where the worker keeps the pack versions it runs actions from, fetched from PostgreSQL and kept across restarts; one per worker (docs/pack-versions.md); default: attune/packs/NAME under the user's cache directory, removed when the process stops if NAME was generated")
	fs.DurationVar(&cfg.workerWaitTimeout, "worker-wait-timeout", 5*time.Minute, "how long an execution with a worker_selector waits for a live worker with those labels before it fails (executor)")
	fs.DurationVar(&cfg.sensorLease, "sensor-lease", 10*time.Second, "how long a sensor replica's hold on a custom sensor lasts unless renewed: when the replica dies, another starts its sensors this long after its last renewal")
	fs.StringVar(&cfg.sensorPackCache, "sensor-pack-cache", "", "directory where the sensor role keeps the pack versions it runs custom sensors from, fetched from PostgreSQL; one per process (docs/pack-versions.md); default: attune/sensor-packs/REPLICA under the user's cache directory, REPLICA naming this process")
	fs.StringVar(&cfg.packsDir, "packs-dir", "", "register every pack under this directory at start (each subdirectory holding a pack.yaml)")
	fs.BoolVar(&cfg.auth, "auth", true, "require a token on the API; false lets every request act as an admin, for local experiments only")
	fs.DurationVar(&cfg.accessTTL, "access-token-ttl", time.Hour, "how long an access token from /auth/login lasts")
	fs.DurationVar(&cfg.refreshTTL, "refresh-token-ttl", 7*24*time.Hour, "how long a refresh token lasts: how long a login may go unused")
	registerLogFlags(fs, &cfg.logs)
	registerKeyringFlags(fs, &cfg.keys)
	registerRetentionFlags(fs, &cfg)
	cli.BindEnv(fs, "auth", "ATTUNE_AUTH")
	cli.BindEnv(fs, "access-token-ttl", "ATTUNE_ACCESS_TOKEN_TTL")
	cli.BindEnv(fs, "refresh-token-ttl", "ATTUNE_REFRESH_TOKEN_TTL")
	cli.BindEnv(fs, "packs-dir", "ATTUNE_PACKS_DIR")
	cli.BindEnv(fs, "worker-heartbeat", "ATTUNE_WORKER_HEARTBEAT")
	cli.BindEnv(fs, "worker-timeout", "ATTUNE_WORKER_TIMEOUT")
	cli.BindEnv(fs, "worker-api-url", "ATTUNE_WORKER_API_URL")
	cli.BindEnv(fs, "worker-labels", "ATTUNE_WORKER_LABELS")
	cli.BindEnv(fs, "worker-pack-cache", "ATTUNE_WORKER_PACK_CACHE")
	cli.BindEnv(fs, "worker-wait-timeout", "ATTUNE_WORKER_WAIT_TIMEOUT")
	cli.BindEnv(fs, "sensor-lease", "ATTUNE_SENSOR_LEASE")
	cli.BindEnv(fs, "sensor-pack-cache", "ATTUNE_SENSOR_PACK_CACHE")
	cli.BindEnv(fs, "roles", "ATTUNE_ROLES")
	_ = cmd.RegisterFlagCompletionFunc("roles", completeRoles)
	cli.BindEnv(fs, "amqp-url", "ATTUNE_AMQP_URL")
	cli.BindEnv(fs, "amqp-namespace", "ATTUNE_AMQP_NAMESPACE")
	cli.BindEnv(fs, "amqp-queue-type", "ATTUNE_AMQP_QUEUE_TYPE")
	cli.BindEnv(fs, "http-addr", "ATTUNE_HTTP_ADDR")
	cli.BindEnv(fs, "metrics", "ATTUNE_METRICS")
	cli.BindEnv(fs, "migrate", "ATTUNE_MIGRATE")
	cli.BindEnv(fs, "shutdown-timeout", "ATTUNE_SHUTDOWN_TIMEOUT")
	cli.BindEnv(fs, "worker-name", "ATTUNE_WORKER_NAME")
	cli.BindEnv(fs, "worker-concurrency", "ATTUNE_WORKER_CONCURRENCY")
	return cmd
}

// validate checks the configuration before anything is opened, so that a mistake costs one
// clear line and no connection attempt.
func (c *serveConfig) validate() error {
	roles, err := ParseRoles(c.rolesFlag)
	if err != nil {
		return err
	}
	c.roles = roles
	if _, err := c.keys.configuredKeys(); err != nil {
		return err
	}
	if _, err := store.ParseURL(c.databaseURL); err != nil {
		return fmt.Errorf("--database-url: %w", err)
	}
	if len(c.amqpURLs) == 0 && !hasAllRoles(roles) {
		return fmt.Errorf("--roles=%s needs --amqp-url (or ATTUNE_AMQP_URL): without a broker URL the roles talk "+
			"through the in-process broker, which only reaches roles in the same process, so it is allowed only with --roles=all",
			roleNames(roles))
	}
	for _, u := range c.amqpURLs {
		if err := amqpbroker.ValidateURL(u); err != nil {
			return fmt.Errorf("--amqp-url: %w", err)
		}
	}
	if _, err := amqpbroker.ParseQueueType(c.amqpQueueType); err != nil {
		return fmt.Errorf("--amqp-queue-type: %w", err)
	}
	if strings.ContainsAny(c.amqpNamespace, "*# \t") {
		return fmt.Errorf("invalid --amqp-namespace %q: no '*', '#' or spaces", c.amqpNamespace)
	}
	if c.shutdownTimeout <= 0 {
		return fmt.Errorf("invalid --shutdown-timeout %s: must be positive", c.shutdownTimeout)
	}
	if c.sensorLease < time.Second {
		return fmt.Errorf("invalid --sensor-lease %s: want at least 1s (a sensor's replica renews its lease every fifth of it)", c.sensorLease)
	}
	if c.workerHeartbeat <= 0 || c.workerTimeout <= c.workerHeartbeat {
		return fmt.Errorf("invalid --worker-heartbeat %s / --worker-timeout %s: both positive, the timeout longer than the heartbeat", c.workerHeartbeat, c.workerTimeout)
	}
	if c.accessTTL <= 0 || c.refreshTTL < c.accessTTL {
		return fmt.Errorf("invalid --access-token-ttl %s / --refresh-token-ttl %s: both positive, the refresh one at least as long", c.accessTTL, c.refreshTTL)
	}
	if c.workerConcurrency < 1 {
		return fmt.Errorf("invalid --worker-concurrency %d: must be at least 1", c.workerConcurrency)
	}
	if c.workerLabels, err = store.ParseLabels(c.workerLabelsFlag); err != nil {
		return fmt.Errorf("invalid --worker-labels %q: %w", c.workerLabelsFlag, err)
	}
	if c.workerWaitTimeout <= 0 {
		return fmt.Errorf("invalid --worker-wait-timeout %s: must be positive", c.workerWaitTimeout)
	}
	if c.workerName == "" || strings.ContainsAny(c.workerName, ".*# \t") {
		return fmt.Errorf("invalid --worker-name %q: must be non-empty, without '.', '*', '#' or spaces", c.workerName)
	}
	return c.validateRetention()
}

func defaultWorkerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	// A worker's name is part of its queue's routing key, where dots separate words.
	return strings.ReplaceAll(host, ".", "-") + "-" + strconv.Itoa(os.Getpid())
}
