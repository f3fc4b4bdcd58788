package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

type tokenRequest struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// tokenCreated is the one answer that carries a token's secret: it is not kept anywhere.
type tokenCreated struct {
	store.APIToken
	Token string `json:"token"`
}

// createToken makes an API token for the caller, to act with the caller's role or a smaller
// one, until it is revoked or expires.
func (m *Module) createToken(c echo.Context) error {
	var req tokenRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	if p.IdentityID == 0 {
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: "authentication is off: there is no identity to own a token"}
	}
	if p.TokenID != 0 {
		// Else a token could outlive itself: one that expires tomorrow, or is about to be
		// revoked, would mint another that does not.
		return forbidden("API tokens are made from a login session (attune login), not with another API token")
	}
	if len(req.Name) > 200 {
		return fieldError("name", "name: at most 200 characters")
	}
	var role *string
	if req.Role != "" {
		r, err := parseRole(req.Role)
		if err != nil {
			return fieldError("role", "role: %v", err)
		}
		if r.rank() > p.Role.rank() {
			return fieldError("role", "role: %s is more than your own role, %s", r, p.Role)
		}
		role = &req.Role
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(time.Now()) {
		return fieldError("expires_at", "expires_at: %s is not in the future", req.ExpiresAt.Format(time.RFC3339))
	}
	secret, err := randomSecret(32)
	if err != nil {
		return err
	}
	secret = apiTokenPrefix + secret
	sum := sha256.Sum256([]byte(secret))
	t, err := m.deps.Store.TokenInsert(c.Request().Context(), store.TokenInsertParams{
		IdentityID: p.IdentityID, Name: req.Name, Prefix: secret[:len(apiTokenPrefix)+6], SecretSHA256: sum[:],
		Role: role, ExpiresAt: req.ExpiresAt,
	})
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(c.Request().Context(), "api token created", "token_id", t.ID, "login", p.Login, "name", t.Name)
	return c.JSON(http.StatusCreated, dataBody[tokenCreated]{Data: tokenCreated{APIToken: t, Token: secret}})
}

// listTokens lists the caller's tokens; an admin sees everyone's with ?all=true.
func (m *Module) listTokens(c echo.Context) error {
	p := principalOf(c)
	owner := p.IdentityID
	switch c.QueryParam("all") {
	case "", "false":
	case "true":
		if p.Role != Admin {
			return forbidden("only an admin may list everyone's tokens")
		}
		owner = 0
	default:
		return badRequest("invalid all %q: want true or false", c.QueryParam("all"))
	}
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.APIToken, int, error) {
		return m.deps.Store.TokenList(ctx, owner, page)
	})
}

// revokeToken ends a token at once. People revoke their own; an admin revokes anyone's.
// Another identity's token is "not found" to a non-admin, who has no business knowing it.
func (m *Module) revokeToken(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx, p := c.Request().Context(), principalOf(c)
	if p.TokenID != 0 && p.TokenID != id {
		return forbidden("an API token may revoke itself only; revoke others from a login session (attune login)")
	}
	t, err := m.deps.Store.TokenGet(ctx, id)
	if err == nil && p.Role != Admin && t.IdentityID != p.IdentityID {
		err = fmt.Errorf("get api token %d: %w", id, store.ErrNotFound)
	}
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no API token %d", id)}
	}
	if err != nil {
		return err
	}
	t, err = m.deps.Store.TokenRevoke(ctx, id)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "api token revoked", "token_id", t.ID, "owner", t.Login, "by", p.Login)
	return c.JSON(http.StatusOK, dataBody[store.APIToken]{Data: t})
}

type webhookSecretRequest struct {
	Secret string `json:"secret"`
}

func (m *Module) listWebhookSecrets(c echo.Context) error {
	return listOf(c, m.deps.Store.WebhookSecretList)
}

// setWebhookSecret makes POST /webhooks/{url} take only bodies signed with secret.
func (m *Module) setWebhookSecret(c echo.Context) error {
	var req webhookSecretRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if len(req.Secret) < 16 {
		return fieldError("secret", "secret: at least 16 characters")
	}
	w, created, err := m.deps.Store.WebhookSecretSet(c.Request().Context(), c.Param("url"), req.Secret)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(c.Request().Context(), "webhook secret set", "url", w.URL, "by", principalOf(c).Login)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, dataBody[store.WebhookSecret]{Data: w})
}

func (m *Module) deleteWebhookSecret(c echo.Context) error {
	if err := m.deps.Store.WebhookSecretDelete(c.Request().Context(), c.Param("url")); err != nil {
		return err
	}
	m.deps.Logger.InfoContext(c.Request().Context(), "webhook secret deleted: the url takes unsigned bodies again",
		"url", c.Param("url"), "by", principalOf(c).Login)
	return c.NoContent(http.StatusNoContent)
}

// signatureHeader carries the HMAC of a webhook body, the way GitHub sends it.
const signatureHeader = "X-Hub-Signature-256"

// signatureOf reads the signature a webhook to a url with a secret must carry, before its
// body is read: a post without one is refused at once.
func signatureOf(c echo.Context, url string) ([]byte, error) {
	got, ok := strings.CutPrefix(c.Request().Header.Get(signatureHeader), "sha256=")
	sig, decodeErr := hex.DecodeString(got)
	if !ok || decodeErr != nil || len(sig) == 0 {
		return nil, &Error{Status: http.StatusUnauthorized, Code: "invalid_signature",
			Message: fmt.Sprintf("webhook %s takes signed bodies only: send %s: sha256=<hex HMAC-SHA256 of the body>", url, signatureHeader)}
	}
	return sig, nil
}

// checkSignature refuses a body that sig, read by signatureOf, does not sign with secret
// (HMAC-SHA256, compared in constant time).
func checkSignature(url, secret string, sig, body []byte) error {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_signature",
			Message: fmt.Sprintf("webhook %s: the %s signature does not match the body", url, signatureHeader)}
	}
	return nil
}
