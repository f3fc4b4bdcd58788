package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// tokenKind tells an access token, which calls the API, from a refresh token, which only
// buys new tokens at /auth/refresh.
type tokenKind string

const (
	accessToken  tokenKind = "access"
	refreshToken tokenKind = "refresh"
	jwtIssuer              = "attune"
)

type sessionClaims struct {
	jwt.RegisteredClaims
	Login string    `json:"login"`
	Kind  tokenKind `json:"token_type"`
	// Version is the identity's token version when the token was issued; a password change
	// advances it and so ends the token.
	Version int `json:"ver"`
}

// sessions issues and checks the JWTs of logged-in identities.
type sessions struct {
	key        *signingKey
	identities interface {
		IdentityGet(ctx context.Context, id int64) (store.Identity, error)
	}
	accessTTL  time.Duration
	refreshTTL time.Duration
}

// tokenPair is what /auth/login and /auth/refresh answer, in the shape OAuth 2 clients
// expect of a token endpoint.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

func (s *sessions) issue(ctx context.Context, id store.Identity) (tokenPair, error) {
	key, err := s.key.get(ctx)
	if err != nil {
		return tokenPair{}, err
	}
	now := time.Now()
	sign := func(kind tokenKind, ttl time.Duration) (string, error) {
		return jwt.NewWithClaims(jwt.SigningMethodHS256, sessionClaims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer:    jwtIssuer,
				Subject:   strconv.FormatInt(id.ID, 10),
				IssuedAt:  jwt.NewNumericDate(now),
				ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
				ID:        uuid.NewString(),
			},
			Login: id.Login, Kind: kind, Version: id.TokenVersion,
		}).SignedString(key)
	}
	access, err := sign(accessToken, s.accessTTL)
	if err != nil {
		return tokenPair{}, err
	}
	refresh, err := sign(refreshToken, s.refreshTTL)
	if err != nil {
		return tokenPair{}, err
	}
	return tokenPair{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", ExpiresIn: int(s.accessTTL / time.Second)}, nil
}

// identity checks a JWT of the given kind and returns the identity it was issued to, as it
// is now. Every failure is a 401; an expired token says so, for clients that refresh.
func (s *sessions) identity(ctx context.Context, c echo.Context, raw string, kind tokenKind) (store.Identity, error) {
	key, err := s.key.get(ctx)
	if err != nil {
		return store.Identity{}, err
	}
	var claims sessionClaims
	_, err = jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(jwtIssuer),
		jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return store.Identity{}, unauthorized(c, "token_expired", string(kind)+" token expired")
	case err != nil:
		return store.Identity{}, unauthorized(c, "unauthorized", "invalid "+string(kind)+" token")
	case claims.Kind != kind:
		return store.Identity{}, unauthorized(c, "unauthorized", "a "+string(claims.Kind)+" token cannot be used as a "+string(kind)+" token")
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil {
		return store.Identity{}, unauthorized(c, "unauthorized", "invalid "+string(kind)+" token")
	}
	identity, err := s.identities.IdentityGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Identity{}, unauthorized(c, "unauthorized", "the identity of this token no longer exists")
	}
	if err != nil {
		return store.Identity{}, err
	}
	if identity.TokenVersion != claims.Version {
		return store.Identity{}, unauthorized(c, "unauthorized", "this token was issued before the password changed; log in again")
	}
	return identity, nil
}

type loginRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

// decoyHash is checked against when the login is unknown, so that an unknown login takes as
// long to refuse as a wrong password and logins cannot be discovered by timing. It is made
// on first use: every attune command links this package, and most never check a password.
var decoyHash = sync.OnceValue(func() string {
	h, err := hashPassword("decoy password, never matched")
	if err != nil {
		panic(err)
	}
	return h
})

// passwordCheckWait is how long a password check waits for one of the slots before the
// request is refused as the server being busy (Module.passwordWait, which tests shorten).
const passwordCheckWait = 5 * time.Second

// checkLoginPassword checks a password in one of a few slots: each check holds Argon2id's
// 19 MiB for tens of milliseconds, and /auth/login is open to anyone, so a flood of logins
// must queue instead of exhausting memory.
func (m *Module) checkLoginPassword(ctx context.Context, hash, password string) (bool, error) {
	select {
	case m.passwordSlots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-time.After(m.passwordWait):
		return false, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "too many password checks at once; retry shortly"}
	}
	defer func() { <-m.passwordSlots }()
	return checkPassword(hash, password)
}

// login exchanges a login and password for an access token and a refresh token.
func (m *Module) login(c echo.Context) error {
	var req loginRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	switch {
	case req.Login == "":
		return fieldError("login", "login: required")
	case req.Password == "":
		return fieldError("password", "password: required")
	}
	ctx := c.Request().Context()
	identity, err := m.deps.Store.IdentityGetByLogin(ctx, req.Login)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	hash := identity.PasswordHash
	if hash == "" {
		hash = decoyHash()
	}
	ok, err := m.checkLoginPassword(ctx, hash, req.Password)
	if err != nil {
		return err
	}
	if !ok || identity.ID == 0 {
		// The login is named only when it exists: an unknown one is as often a password
		// typed into the wrong field.
		attrs := []any{"remote_addr", c.Request().RemoteAddr}
		if identity.ID != 0 {
			attrs = append(attrs, "login", identity.Login)
		}
		m.deps.Logger.InfoContext(ctx, "login refused", attrs...)
		return unauthorized(c, "unauthorized", "invalid login or password")
	}
	pair, err := m.sessions.issue(ctx, identity)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pair)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh exchanges a refresh token for a new pair, as long as the identity still exists and
// its password has not changed since.
func (m *Module) refresh(c echo.Context) error {
	var req refreshRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return fieldError("refresh_token", "refresh_token: required")
	}
	identity, err := m.sessions.identity(c.Request().Context(), c, req.RefreshToken, refreshToken)
	if err != nil {
		return err
	}
	pair, err := m.sessions.issue(c.Request().Context(), identity)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pair)
}
