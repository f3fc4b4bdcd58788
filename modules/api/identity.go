package api

import (
	"context"
	"net/http"
	"regexp"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// loginPattern is attune.identity's check, said before the database says it less clearly.
var loginPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

type identityRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

type identityUpdate struct {
	Password string `json:"password"`
	Role     string `json:"role"`
	// CurrentPassword proves a change of one's own password is made by its owner, and not
	// by whoever holds one of their tokens.
	CurrentPassword string `json:"current_password"`
}

func (m *Module) listIdentities(c echo.Context) error { return listOf(c, m.deps.Store.IdentityList) }

func (m *Module) getIdentity(c echo.Context) error {
	i, err := m.deps.Store.IdentityGetByLogin(c.Request().Context(), c.Param("login"))
	return one(c, i, err)
}

// whoami answers who the request acts for: the CLI's login says it, and scripts check it.
func (m *Module) whoami(c echo.Context) error {
	p := principalOf(c)
	return c.JSON(http.StatusOK, dataBody[whoamiBody]{Data: whoamiBody{Login: p.Login, Role: p.Role, TokenID: p.TokenID}})
}

type whoamiBody struct {
	Login   string `json:"login"`
	Role    Role   `json:"role"`
	TokenID int64  `json:"token_id,omitempty"`
}

func (m *Module) createIdentity(c echo.Context) error {
	var req identityRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if !loginPattern.MatchString(req.Login) {
		return fieldError("login", "login: want 1 to 64 letters, digits or . _ @ -, starting with a letter or digit; got %q", req.Login)
	}
	if req.Role == "" {
		return fieldError("role", "role: required (admin, operator or viewer)")
	}
	if _, err := parseRole(req.Role); err != nil {
		return fieldError("role", "role: %v", err)
	}
	if req.Password == "" {
		return fieldError("password", "password: required")
	}
	if err := checkNewPassword(req.Password); err != nil {
		return err
	}
	hash, err := hashPassword(req.Password)
	if err != nil {
		return err
	}
	i, err := m.deps.Store.IdentityInsert(c.Request().Context(), req.Login, hash, req.Role)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(c.Request().Context(), "identity created", "login", i.Login, "role", i.Role, "by", principalOf(c).Login)
	return c.JSON(http.StatusCreated, dataBody[store.Identity]{Data: i})
}

// updateIdentity changes a role or a password. Admins change anyone's; everyone may change
// their own password, given the current one, which ends the sessions issued before.
func (m *Module) updateIdentity(c echo.Context) error {
	var req identityUpdate
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	login, p := c.Param("login"), principalOf(c)
	if p.Role != Admin && (login != p.Login || req.Role != "") {
		return forbidden("only an admin may change another identity or a role")
	}
	if req.Password == "" && req.Role == "" {
		return badRequest("give password, role or both")
	}
	if req.Password != "" && login == p.Login {
		if err := m.checkCurrentPassword(c, login, req.CurrentPassword); err != nil {
			return err
		}
	}
	if req.Role != "" {
		if _, err := parseRole(req.Role); err != nil {
			return fieldError("role", "role: %v", err)
		}
	}
	var hash string
	if req.Password != "" {
		if err := checkNewPassword(req.Password); err != nil {
			return err
		}
		var err error
		if hash, err = hashPassword(req.Password); err != nil {
			return err
		}
	}
	i, err := m.deps.Store.IdentityUpdate(c.Request().Context(), login, hash, req.Role)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(c.Request().Context(), "identity updated", "login", i.Login, "role", i.Role,
		"password_changed", hash != "", "by", p.Login)
	return c.JSON(http.StatusOK, dataBody[store.Identity]{Data: i})
}

// checkCurrentPassword refuses a change of one's own password that does not give the
// current one: a token alone, a viewer-scoped API token above all, must not be enough to
// take the identity over.
func (m *Module) checkCurrentPassword(c echo.Context, login, current string) error {
	if current == "" {
		return fieldError("current_password", "current_password: required to change your own password")
	}
	identity, err := m.deps.Store.IdentityGetByLogin(c.Request().Context(), login)
	if err != nil {
		return err
	}
	ok, err := m.checkLoginPassword(c.Request().Context(), identity.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		refused := forbidden("current_password: it is not the current password")
		refused.Field = "current_password"
		return refused
	}
	return nil
}

func (m *Module) deleteIdentity(c echo.Context) error {
	ctx := c.Request().Context()
	if err := m.deps.Store.IdentityDelete(ctx, c.Param("login")); err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "identity deleted", "login", c.Param("login"), "by", principalOf(c).Login)
	return c.NoContent(http.StatusNoContent)
}

// identityStore is what the identity and token routes need of the store.
type identityStore interface {
	IdentityBootstrap(ctx context.Context, login, passwordHash string) (bool, error)
	IdentityDelete(ctx context.Context, login string) error
	IdentityGet(ctx context.Context, id int64) (store.Identity, error)
	IdentityGetByLogin(ctx context.Context, login string) (store.Identity, error)
	IdentityInsert(ctx context.Context, login, passwordHash, role string) (store.Identity, error)
	IdentityList(ctx context.Context, page store.Page) ([]store.Identity, int, error)
	IdentityUpdate(ctx context.Context, login, passwordHash, role string) (store.Identity, error)
	AuthKey(ctx context.Context, candidate []byte) ([]byte, error)
	TokenGet(ctx context.Context, id int64) (store.APIToken, error)
	TokenInsert(ctx context.Context, p store.TokenInsertParams) (store.APIToken, error)
	TokenList(ctx context.Context, identityID int64, page store.Page) ([]store.APIToken, int, error)
	TokenOwnerBySecret(ctx context.Context, sum []byte) (store.TokenOwner, error)
	TokenRevoke(ctx context.Context, id int64) (store.APIToken, error)
	WebhookSecretDelete(ctx context.Context, url string) error
	WebhookRouteFor(ctx context.Context, url string) (store.WebhookRoute, error)
	WebhookSecretList(ctx context.Context, page store.Page) ([]store.WebhookSecret, int, error)
	WebhookSecretSet(ctx context.Context, url, secret string) (store.WebhookSecret, bool, error)
}
