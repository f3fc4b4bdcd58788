// Package api serves Attune's REST API under /api/v1: JSON in and out, lists in one
// pagination envelope, errors in one error shape.
package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"golang.org/x/sync/errgroup"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/api/stream"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/coalesce"
)

// Store is what the API reads and writes.
type Store interface {
	pack.Registrar
	identityStore
	keyStore
	ActionCreate(ctx context.Context, a store.Action) (store.Action, error)
	KeyLookup(ctx context.Context, packRef string, user *int64, names []store.KeyName) (map[store.KeyName]store.KeyFound, error)
	ActionDelete(ctx context.Context, ref string) ([]string, error)
	ActionList(ctx context.Context, packRef string, page store.Page) ([]store.Action, int, error)
	ActionUpdate(ctx context.Context, a store.Action) (store.Action, error)
	EnforcementGet(ctx context.Context, id int64) (store.Enforcement, error)
	EnforcementList(ctx context.Context, f store.EnforcementFilter, page store.Page) ([]store.Enforcement, int, error)
	EventGet(ctx context.Context, id int64) (store.Event, error)
	EventInsert(ctx context.Context, p store.EventInsertParams) (store.Event, error)
	EventList(ctx context.Context, f store.EventFilter, page store.Page) ([]store.Event, int, error)
	ExecutionGet(ctx context.Context, id int64) (store.Execution, error)
	ExecutionAttempts(ctx context.Context, id int64) ([]store.Execution, error)
	ExecutionCancelRetry(ctx context.Context, id int64) (store.Execution, bool, error)
	ExecutionRequest(ctx context.Context, p store.ExecutionCreateParams) (store.ExecutionCreated, error)
	ExecutionRequesters(ctx context.Context, ids []int64) (map[int64]store.Requester, error)
	AuditList(ctx context.Context, f store.AuditFilter, page store.Page) ([]store.AuditEntry, int, error)
	DashboardGet(ctx context.Context, aliveWithin time.Duration) (store.Dashboard, error)
	ExecutionCreateRerun(ctx context.Context, p store.ExecutionCreateParams, rerun store.WorkflowRerun) (store.ExecutionCreated, error)
	WorkflowGet(ctx context.Context, id int64) (store.Workflow, error)
	// WorkflowTransition moves a workflow's execution under the workflow's lock, so that a
	// pause or cancel never lands in the middle of an advance.
	WorkflowTransition(ctx context.Context, t store.ExecutionTransition) (store.Execution, bool, error)
	WorkflowTasks(ctx context.Context, id int64) ([]store.WorkflowTask, error)
	ExecutionList(ctx context.Context, f store.ExecutionFilter, page store.Page) ([]store.Execution, int, error)
	ExecutionQueuePosition(ctx context.Context, id int64) (*int, error)
	ExecutionTransition(ctx context.Context, t store.ExecutionTransition) (store.Execution, bool, error)
	InquiryGet(ctx context.Context, id int64) (store.Inquiry, error)
	InquiryList(ctx context.Context, f store.InquiryFilter, page store.Page) ([]store.Inquiry, int, error)
	InquiryRespond(ctx context.Context, id int64, login string, response json.RawMessage) (store.Inquiry, store.Execution, error)
	PackDelete(ctx context.Context, ref string) ([]string, error)
	PackGetByRef(ctx context.Context, ref string) (store.Pack, error)
	PackVersionList(ctx context.Context, ref string) ([]store.PackVersion, error)
	PackList(ctx context.Context, page store.Page) ([]store.Pack, int, error)
	PolicyCreate(ctx context.Context, x store.Policy) (store.Policy, error)
	PolicyDelete(ctx context.Context, ref string) error
	PolicyFor(ctx context.Context, actionRef string) (store.Policy, error)
	PolicyGet(ctx context.Context, ref string) (store.Policy, error)
	PolicyList(ctx context.Context, page store.Page) ([]store.Policy, int, error)
	PolicyUpdate(ctx context.Context, ref string, x store.Policy) (store.Policy, error)
	QueueStatsGet(ctx context.Context, actionRef string, limit *int) (store.QueueStats, error)
	RuleCreate(ctx context.Context, r store.Rule) (store.Rule, error)
	RuleDelete(ctx context.Context, ref string) error
	RuleGetByRef(ctx context.Context, ref string) (store.Rule, error)
	RuleList(ctx context.Context, packRef string, page store.Page) ([]store.Rule, int, error)
	RuleListByTrigger(ctx context.Context, triggerRef string) ([]store.Rule, error)
	RuleListByAction(ctx context.Context, actionRef string) ([]store.Rule, error)
	RuleSetEnabled(ctx context.Context, ref string, enabled bool) (store.Rule, error)
	RuleUpdate(ctx context.Context, r store.Rule) (store.Rule, error)
	SensorGetByRef(ctx context.Context, ref string) (store.SensorView, error)
	SensorList(ctx context.Context, packRef string, page store.Page) ([]store.SensorView, int, error)
	SensorSetEnabled(ctx context.Context, ref string, enabled bool) error
	SensorTokenHolderBySum(ctx context.Context, sum []byte) (store.SensorTokenHolder, error)
	TriggerCreate(ctx context.Context, t store.Trigger) (store.Trigger, error)
	TriggerDelete(ctx context.Context, ref string) error
	TriggerList(ctx context.Context, packRef string, page store.Page) ([]store.Trigger, int, error)
	TriggerUpdate(ctx context.Context, t store.Trigger) (store.Trigger, error)
	WorkerDelete(ctx context.Context, name string, aliveWithin time.Duration) error
	WorkerGet(ctx context.Context, name string, aliveWithin time.Duration) (store.Worker, error)
	WorkerList(ctx context.Context, aliveWithin time.Duration, page store.Page) ([]store.Worker, int, error)
	WorkflowViewGet(ctx context.Context, id int64) (store.WorkflowView, error)
	TraceGet(ctx context.Context, id string) (store.Trace, error)
}

// Config configures the API. Its zero value requires authentication.
type Config struct {
	// AuthDisabled lets every request through as an admin, for local experiments.
	AuthDisabled bool
	// AdminPassword is the password of the admin made when no identity exists; empty
	// generates one and logs it once.
	AdminPassword string
	// AccessTTL and RefreshTTL are how long login's tokens last. Default 1 hour and 7 days.
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// WorkerTimeout is how long after its last heartbeat a worker counts as dead: it reads
	// as inactive, and its record may be deleted. Default 30s, the executor's default.
	WorkerTimeout time.Duration
	// Replica names this process's own queue of notifications for the live stream; it must
	// differ from every other api replica's. Default: a random name.
	Replica string
	// StreamHeartbeat is how often a live stream with nothing to say sends a comment, so that
	// clients and proxies can tell an idle stream from a dead one. Default 15s.
	StreamHeartbeat time.Duration
	// StreamBuffer is how many notifications a live-stream client may fall behind before it is
	// cut off. Default 1024.
	StreamBuffer int
	// AnswerWithin bounds the requests that feed the pipeline (webhooks, events, execute,
	// rerun, cancel, pause, resume): by then the change is committed and accepted, or nothing
	// is recorded and the answer is 503. Default 5s.
	AnswerWithin time.Duration
	// KeySweepInterval is how often expired datastore keys and execution tokens are deleted
	// (they are invisible from the moment they expire). Default 1m.
	KeySweepInterval time.Duration
	// WebhookRate limits the webhooks this replica takes per url (429 past it); zero takes
	// every one.
	WebhookRate WebhookRate
}

// Broker is what the API publishes through, and where its live stream is fed from.
type Broker interface {
	broker.Publisher
	broker.Subscriber
}

// Notifier hears of every change the API commits (executions requested and cancelled, events
// created), for the live stream. It is best effort and must not block.
type Notifier interface {
	Notify(ns ...broker.Notification)
}

// Deps are the API's collaborators. Routes is the /api/v1 group of the process's HTTP
// server, Auth its /auth group (login and refresh). Notifier may be nil: nothing is notified.
// Relay sends what a commit calls for without waiting on a broker that is away (package
// broker/relay); nil publishes through Broker directly. Keyring seals and opens secret keys;
// nil refuses both.
type Deps struct {
	Logger   *slog.Logger
	Store    Store
	Broker   Broker
	Relay    broker.Sender
	Routes   *echo.Group
	Auth     *echo.Group
	Notifier Notifier
	// Keyring seals secret parameters before an execution is written (only the worker opens
	// them) and secret keys before they are stored, and opens a key for an allowed decrypt.
	Keyring Keyring
}

// Module is the api role.
type Module struct {
	cfg      Config
	deps     Deps
	sessions *sessions
	hub      *stream.Hub
	// passwordSlots bounds the Argon2id checks running at once; a check waits passwordWait
	// for one.
	passwordSlots chan struct{}
	passwordWait  time.Duration
	// roles is the least role of each route, by "METHOD /path" as registered.
	roles map[string]Role
	// webhookBuckets holds each webhook url's tokens; nil takes every webhook.
	webhookBuckets *buckets
	// dashboards shares the readings of GET /dashboard among the requests that ask at once.
	dashboards *coalesce.Group[struct{}, store.Dashboard]
}

// New registers the API's routes on deps.Routes.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.Store == nil || deps.Routes == nil || deps.Auth == nil || deps.Logger == nil || deps.Broker == nil || deps.Keyring == nil {
		return nil, errors.New("api: Logger, Store, Broker, Keyring, Routes and Auth are required")
	}
	if deps.Relay == nil {
		deps.Relay = broker.Direct(deps.Broker)
	}
	cfg.AccessTTL = cmp.Or(cfg.AccessTTL, time.Hour)
	cfg.RefreshTTL = cmp.Or(cfg.RefreshTTL, 7*24*time.Hour)
	cfg.WorkerTimeout = cmp.Or(cfg.WorkerTimeout, 30*time.Second)
	cfg.Replica = cmp.Or(cfg.Replica, uuid.NewString())
	cfg.StreamHeartbeat = cmp.Or(cfg.StreamHeartbeat, 15*time.Second)
	cfg.AnswerWithin = cmp.Or(cfg.AnswerWithin, 5*time.Second)
	cfg.KeySweepInterval = cmp.Or(cfg.KeySweepInterval, time.Minute)
	m := &Module{cfg: cfg, deps: deps, roles: make(map[string]Role), webhookBuckets: newBuckets(cfg.WebhookRate), passwordSlots: make(chan struct{}, 2*runtime.GOMAXPROCS(0)), passwordWait: passwordCheckWait, hub: stream.NewHub(stream.Config{Buffer: cfg.StreamBuffer}),
		sessions: &sessions{
			key: &signingKey{store: deps.Store}, identities: deps.Store, accessTTL: cfg.AccessTTL, refreshTTL: cfg.RefreshTTL,
		}}
	m.dashboards = newDashboards(deps.Store, cfg.WorkerTimeout)
	deps.Auth.POST("/login", m.login)
	deps.Auth.POST("/refresh", m.refresh)
	m.route(http.MethodGet, "/openapi.json", m.openAPI, Public)
	m.route(http.MethodGet, "/packs", m.listPacks, Viewer)
	m.route(http.MethodGet, "/packs/:ref", m.getPack, Viewer)
	m.route(http.MethodPost, "/packs/register", m.registerPack, Admin)
	m.route(http.MethodPost, "/packs", m.uploadPack, Admin)
	m.route(http.MethodDelete, "/packs/:ref", m.deletePack, Admin)
	m.route(http.MethodGet, "/actions", m.listActions, Viewer)
	m.route(http.MethodGet, "/actions/:ref", m.getAction, Viewer)
	m.route(http.MethodGet, "/actions/:ref/queue-stats", m.queueStats, Viewer)
	m.route(http.MethodPost, "/actions", m.createAction, Admin)
	m.route(http.MethodPut, "/actions/:ref", m.updateAction, Admin)
	m.route(http.MethodDelete, "/actions/:ref", m.deleteAction, Admin)
	m.route(http.MethodGet, "/triggers", m.listTriggers, Viewer)
	m.route(http.MethodGet, "/triggers/:ref", m.getTrigger, Viewer)
	m.route(http.MethodPost, "/triggers", m.createTrigger, Admin)
	m.route(http.MethodPut, "/triggers/:ref", m.updateTrigger, Admin)
	m.route(http.MethodDelete, "/triggers/:ref", m.deleteTrigger, Admin)
	m.route(http.MethodGet, "/sensors", m.listSensors, Viewer)
	m.route(http.MethodGet, "/sensors/:ref", m.getSensor, Viewer)
	m.route(http.MethodPost, "/sensors/:ref/enable", m.enableSensor, Operator)
	m.route(http.MethodPost, "/sensors/:ref/disable", m.disableSensor, Operator)
	m.route(http.MethodGet, "/rules", m.listRules, Viewer)
	m.route(http.MethodGet, "/rules/:ref", m.getRule, Viewer)
	m.route(http.MethodPost, "/rules", m.createRule, Operator)
	m.route(http.MethodPut, "/rules/:ref", m.updateRule, Operator)
	m.route(http.MethodPost, "/rules/:ref/enable", m.enableRule, Operator)
	m.route(http.MethodPost, "/rules/:ref/disable", m.disableRule, Operator)
	m.route(http.MethodDelete, "/rules/:ref", m.deleteRule, Operator)
	m.route(http.MethodGet, "/events", m.listEvents, Viewer)
	m.route(http.MethodGet, "/events/:id", m.getEvent, Viewer)
	m.boundedRoute(http.MethodPost, "/events", m.createEvent, Operator)
	m.boundedRoute(http.MethodPost, "/webhooks/:url", m.webhook, Public)
	m.route(http.MethodGet, "/enforcements", m.listEnforcements, Viewer)
	m.route(http.MethodGet, "/enforcements/:id", m.getEnforcement, Viewer)
	m.route(http.MethodGet, "/executions", m.listExecutions, Viewer)
	m.route(http.MethodGet, "/executions/:id", m.getExecution, Viewer)
	m.boundedRoute(http.MethodPost, "/executions/execute", m.execute, Operator)
	m.boundedRoute(http.MethodPost, "/executions/:id/cancel", m.cancel, Operator)
	m.boundedRoute(http.MethodPost, "/executions/:id/pause", m.pause, Operator)
	m.boundedRoute(http.MethodPost, "/executions/:id/resume", m.resume, Operator)
	m.boundedRoute(http.MethodPost, "/executions/:id/rerun", m.rerun, Operator)
	m.route(http.MethodGet, "/traces/:id", m.getTrace, Viewer)
	m.route(http.MethodGet, "/inquiries", m.listInquiries, Viewer)
	m.route(http.MethodGet, "/inquiries/:id", m.getInquiry, Viewer)
	// Who may answer is the inquiry's to say; the handler checks it.
	m.boundedRoute(http.MethodPost, "/inquiries/:id/respond", m.respond, Viewer)
	m.route(http.MethodGet, "/dashboard", m.dashboard, Viewer)
	m.route(http.MethodGet, "/workers", m.listWorkers, Viewer)
	m.route(http.MethodGet, "/workers/:name", m.getWorker, Viewer)
	m.route(http.MethodDelete, "/workers/:name", m.deleteWorker, Admin)
	m.route(http.MethodGet, "/policies", m.listPolicies, Viewer)
	m.route(http.MethodGet, "/policies/:ref", m.getPolicy, Viewer)
	m.route(http.MethodPost, "/policies", m.createPolicy, Admin)
	m.route(http.MethodPut, "/policies/:ref", m.updatePolicy, Admin)
	m.route(http.MethodDelete, "/policies/:ref", m.deletePolicy, Admin)
	m.route(http.MethodGet, "/stream", m.stream, Viewer)
	m.route(http.MethodGet, "/whoami", m.whoami, Viewer)
	m.route(http.MethodGet, "/audit", m.listAudit, Admin)
	m.route(http.MethodGet, "/identities", m.listIdentities, Admin)
	m.route(http.MethodGet, "/identities/:login", m.getIdentity, Admin)
	m.route(http.MethodPost, "/identities", m.createIdentity, Admin)
	// Everyone may change their own password; the handler keeps the rest to admins.
	m.route(http.MethodPut, "/identities/:login", m.updateIdentity, Viewer)
	m.route(http.MethodDelete, "/identities/:login", m.deleteIdentity, Admin)
	m.route(http.MethodGet, "/tokens", m.listTokens, Viewer)
	m.route(http.MethodPost, "/tokens", m.createToken, Viewer)
	m.route(http.MethodDelete, "/tokens/:id", m.revokeToken, Viewer)
	m.route(http.MethodGet, "/webhook-secrets", m.listWebhookSecrets, Admin)
	m.route(http.MethodPut, "/webhook-secrets/:url", m.setWebhookSecret, Admin)
	m.route(http.MethodDelete, "/webhook-secrets/:url", m.deleteWebhookSecret, Admin)
	// Every identity has its own user keys; the handlers keep other scopes to the roles that
	// may, and these are the only routes a running action's token reaches.
	m.keyRoute(http.MethodGet, "/keys", m.listKeys, Viewer)
	m.keyRoute(http.MethodGet, "/keys/:scope/:name", m.getKey, Viewer)
	m.keyRoute(http.MethodPut, "/keys/:scope/:name", m.setKey, Viewer)
	m.keyRoute(http.MethodDelete, "/keys/:scope/:name", m.deleteKey, Viewer)
	return m, nil
}

// Name implements the role module contract.
func (m *Module) Name() string { return "api" }

// Run creates the first admin if there is no identity yet and, meanwhile, feeds the live
// stream from this replica's own notification queue and sweeps expired keys until ctx ends;
// the process's HTTP server does the serving. The queue is consumed from the start, not after the admin is made: a
// stream opened at once must miss nothing. When ctx ends the open streams end with it, so
// that the server's graceful shutdown does not wait on them.
func (m *Module) Run(ctx context.Context) error {
	// Not when Run returns: the subscription may take a moment to drain, and the streams
	// should not. (Its stop function is not called: that could beat ctx's cancellation to
	// it and keep the hub open.)
	context.AfterFunc(ctx, m.hub.Close)
	defer m.hub.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		m.sweepKeys(gctx)
		return nil
	})
	g.Go(func() error {
		if err := m.bootstrap(gctx); err != nil && gctx.Err() == nil {
			return fmt.Errorf("create the first admin: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		q := broker.StreamQueue(m.cfg.Replica)
		err := m.deps.Broker.Subscribe(gctx, broker.Subscription{Queue: q, Prefetch: 1}, m.deliver)
		if err != nil && gctx.Err() == nil {
			// The REST API matters more than the live view: serve on without it.
			m.deps.Logger.ErrorContext(gctx, "live stream unavailable: its queue cannot be consumed", "queue", q.Name, "err", err)
			<-gctx.Done()
		}
		return nil
	})
	return g.Wait()
}
