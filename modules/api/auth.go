package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// Role is what an identity may do. Each role may do everything the roles before it may:
// a viewer reads, an operator also runs, cancels and reruns executions and manages rules, an
// admin does everything.
type Role string

// The roles, and Public for the routes that take no token at all.
const (
	Public   Role = "public"
	Viewer   Role = "viewer"
	Operator Role = "operator"
	Admin    Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case Viewer:
		return 1
	case Operator:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// parseRole accepts the three roles an identity or a token can hold.
func parseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Viewer, Operator, Admin:
		return r, nil
	}
	return "", fmt.Errorf("want admin, operator or viewer, not %q", s)
}

// apiTokenPrefix starts every API token, so that a token found in a log or a repository says
// what it is, and so the gate tells it from an access token without trying both.
const apiTokenPrefix = "atn_"

// principal is who a request acts for, and with what role.
type principal struct {
	IdentityID int64
	Login      string
	Role       Role
	// TokenID is the API token used, 0 for an access token; TokenName its name.
	TokenID   int64
	TokenName string
	// Execution is the running execution whose token the request carries (store.
	// ExecutionTokenPrefix), 0 for an identity; Pack is its action's pack. Such a request
	// reaches the key routes alone (keyRoute), and there only its pack's keys and system's.
	Execution int64
	Pack      string
	// Sensor is the running sensor whose token the request carries (store.SensorTokenPrefix);
	// it may do what a running action of its pack may.
	Sensor string
}

// scoped reports whether p is a running action or sensor, limited to its pack's keys.
func (p principal) scoped() bool { return p.Execution != 0 || p.Sensor != "" }

const principalKey = "attune.principal"

// actor is p as attune.audit records it: a running action or sensor by what it is, since it
// acts as no identity.
func (p principal) actor() store.Actor {
	switch {
	case p.Execution != 0:
		return store.Actor{Login: fmt.Sprintf("execution:%d", p.Execution)}
	case p.Sensor != "":
		return store.Actor{Login: "sensor:" + p.Sensor}
	}
	return store.Actor{ID: p.IdentityID, Login: p.Login, Token: p.TokenName}
}

func principalOf(c echo.Context) principal {
	p, _ := c.Get(principalKey).(principal)
	return p
}

// anonymous acts for every request when authentication is off.
var anonymous = principal{Login: "anonymous", Role: Admin}

// route registers a handler that answers only callers holding at least role need, and
// remembers the role for the OpenAPI document's test.
func (m *Module) route(method, path string, h echo.HandlerFunc, need Role) {
	m.deps.Routes.Add(method, path, h, m.authorize(need, false))
	m.roles[method+" "+path] = need
}

// keyRoute is route for a route of the datastore, the only ones a running action's token
// reaches; the handler decides what that token may do there.
func (m *Module) keyRoute(method, path string, h echo.HandlerFunc, need Role) {
	m.deps.Routes.Add(method, path, h, m.authorize(need, true))
	m.roles[method+" "+path] = need
}

// boundedRoute is route for a request that must be answered within Config.AnswerWithin
// whatever PostgreSQL and the broker do: the pipeline's way in (webhooks, events, execute,
// rerun, cancel, pause, resume). Its context ends then, so a database that does not answer
// gives 503 with nothing recorded; the broker is never waited on past its commit (the relay
// keeps what it cannot send).
func (m *Module) boundedRoute(method, path string, h echo.HandlerFunc, need Role) {
	m.deps.Routes.Add(method, path, h, m.bound, m.authorize(need, false))
	m.roles[method+" "+path] = need
}

func (m *Module) bound(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), m.cfg.AnswerWithin)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		err := next(c)
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
			return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Message: fmt.Sprintf("the database did not answer within %s; retry later", m.cfg.AnswerWithin)}
		}
		return err
	}
}

// authorize is the gate of one route: without a valid token 401, with too small a role 403,
// and with an execution's token 403 unless executions may call the route.
func (m *Module) authorize(need Role, executions bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if need == Public {
			return next
		}
		return func(c echo.Context) error {
			p, err := m.authenticate(c)
			if err != nil {
				return err
			}
			if p.scoped() && !executions {
				return forbidden("%s %s: %s holds a token good for /api/v1/keys only", c.Request().Method, c.Path(), p.Login)
			}
			if p.Role.rank() < need.rank() {
				return forbidden("%s %s needs the %s role; %s is %s", c.Request().Method, c.Path(), need, p.Login, p.Role)
			}
			c.Set(principalKey, p)
			// Every change the store records for this request names who asked.
			c.SetRequest(c.Request().WithContext(store.WithActor(c.Request().Context(), p.actor())))
			return next(c)
		}
	}
}

// unauthorized is the answer to a request without valid credentials; code tells a client
// whether refreshing its access token may help.
func unauthorized(c echo.Context, code, message string) *Error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="attune"`)
	return &Error{Status: http.StatusUnauthorized, Code: code, Message: message}
}

// authenticate finds who the request acts for from its bearer token: an access token from
// /auth/login, or an API token. The identity is read afresh each time, so a deleted identity
// or a changed role applies at once.
func (m *Module) authenticate(c echo.Context) (principal, error) {
	if m.cfg.AuthDisabled {
		return anonymous, nil
	}
	raw, ok := bearer(c.Request())
	if !ok {
		return principal{}, unauthorized(c, "unauthorized", "authentication required: send Authorization: Bearer <token> (POST /auth/login, or an API token)")
	}
	ctx := c.Request().Context()
	if strings.HasPrefix(raw, store.ExecutionTokenPrefix) {
		return m.executionPrincipal(c, raw)
	}
	if strings.HasPrefix(raw, store.SensorTokenPrefix) {
		return m.sensorPrincipal(c, raw)
	}
	if strings.HasPrefix(raw, apiTokenPrefix) {
		sum := sha256.Sum256([]byte(raw))
		owner, err := m.deps.Store.TokenOwnerBySecret(ctx, sum[:])
		if errors.Is(err, store.ErrNotFound) {
			return principal{}, unauthorized(c, "unauthorized", "invalid API token: unknown, revoked or expired")
		}
		if err != nil {
			return principal{}, err
		}
		role := Role(owner.Identity.Role)
		if owner.Token.Role != nil && Role(*owner.Token.Role).rank() < role.rank() {
			role = Role(*owner.Token.Role)
		}
		return principal{IdentityID: owner.Identity.ID, Login: owner.Identity.Login, Role: role, TokenID: owner.Token.ID,
			TokenName: owner.Token.Name}, nil
	}
	id, err := m.sessions.identity(ctx, c, raw, accessToken)
	if err != nil {
		return principal{}, err
	}
	return principal{IdentityID: id.ID, Login: id.Login, Role: Role(id.Role)}, nil
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// signingKey loads the key access tokens are signed with, once it can: the first replica to
// need one makes it, and every replica shares it through the database.
type signingKey struct {
	mu    sync.Mutex
	key   []byte
	store interface {
		AuthKey(ctx context.Context, candidate []byte) ([]byte, error)
	}
}

func (k *signingKey) get(ctx context.Context) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	candidate := make([]byte, 32)
	if _, err := rand.Read(candidate); err != nil {
		return nil, fmt.Errorf("make signing key: %w", err)
	}
	key, err := k.store.AuthKey(ctx, candidate)
	if err != nil {
		return nil, err
	}
	k.key = key
	return key, nil
}

// bootstrapLogin is the identity created when there is none.
const bootstrapLogin = "admin"

// bootstrap creates the first admin when no identity exists: with the configured password,
// or with a generated one that it logs, once, since nobody could log in otherwise.
func (m *Module) bootstrap(ctx context.Context) error {
	if m.cfg.AuthDisabled {
		m.deps.Logger.WarnContext(ctx, "authentication is OFF: every request acts as an admin; for local experiments only")
		return nil
	}
	password, generated := m.cfg.AdminPassword, false
	if password == "" {
		var err error
		if password, err = GeneratePassword(); err != nil {
			return err
		}
		generated = true
	} else if err := checkNewPassword(password); err != nil {
		return fmt.Errorf("ATTUNE_ADMIN_PASSWORD: %w", err)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	created, err := m.deps.Store.IdentityBootstrap(ctx, bootstrapLogin, hash)
	if err != nil {
		return err
	}
	switch {
	case created && generated:
		m.deps.Logger.WarnContext(ctx, "no identity existed: created the admin with a generated password, shown this once; "+
			"log in with it and change it (attune login admin, then attune identity update admin --password)",
			"login", bootstrapLogin, "password", password)
	case created:
		m.deps.Logger.InfoContext(ctx, "no identity existed: created the admin with ATTUNE_ADMIN_PASSWORD", "login", bootstrapLogin)
	}
	return nil
}
