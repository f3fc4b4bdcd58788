package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// The datastore: keys under a scope (system, pack.<ref>, or user: the caller's own), each a
// JSON value, maybe with an expiry, maybe secret. A secret value is kept sealed by the
// keyring and shown as pack.Mask unless ?decrypt=true is asked by whoever may (an admin, the
// owner of a user key, a running action for its own pack's keys), which the log records.

// Keyring seals the values of secret keys and opens them for a decrypt.
type Keyring interface {
	SealValue(v json.RawMessage) (string, error)
	OpenValue(token string) (json.RawMessage, error)
	SealParams(params json.RawMessage, names []string) (json.RawMessage, error)
}

// keyStore is what the datastore's routes and its sweep use of the store.
type keyStore interface {
	KeySet(ctx context.Context, p store.KeySetParams) (store.Key, bool, error)
	KeyGet(ctx context.Context, ref store.KeyRef) (store.Key, error)
	KeyList(ctx context.Context, f store.KeyFilter, page store.Page) ([]store.Key, int, error)
	KeyDelete(ctx context.Context, ref store.KeyRef) error
	KeyDeleteExpired(ctx context.Context, limit int) (int, error)
	ExecutionTokenHolderBySum(ctx context.Context, sum []byte) (store.ExecutionTokenHolder, error)
	ExecutionTokenDeleteExpired(ctx context.Context, limit int) (int, error)
}

var (
	keyScopePattern = regexp.MustCompile(`^(system|user|pack\.[a-z][a-z0-9_-]*)$`)
	keyNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,127}$`)
)

// keyRequest is the body of PUT /keys/{scope}/{name}. TTL is a duration ("90s", "12h"): the
// key is gone that long after the write; none keeps it until it is deleted.
type keyRequest struct {
	Value  json.RawMessage `json:"value"`
	Secret bool            `json:"secret"`
	TTL    string          `json:"ttl"`
}

// executionPrincipal is the principal of a running action's token: valid while its
// execution runs and until the token expires.
func (m *Module) executionPrincipal(c echo.Context, raw string) (principal, error) {
	sum := sha256.Sum256([]byte(raw))
	h, err := m.deps.Store.ExecutionTokenHolderBySum(c.Request().Context(), sum[:])
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, unauthorized(c, "unauthorized", "invalid execution token: unknown or expired, or its execution no longer runs")
	}
	if err != nil {
		return principal{}, err
	}
	return principal{Login: fmt.Sprintf("execution %d of pack %s", h.Execution, h.PackRef), Role: Viewer,
		Execution: h.Execution, Pack: h.PackRef}, nil
}

// keyRef reads the scope and name of a key route, the user scope being the caller's own.
func keyRef(c echo.Context) (store.KeyRef, error) {
	scope, name := c.Param("scope"), c.Param("name")
	if err := checkScope(scope); err != nil {
		return store.KeyRef{}, err
	}
	if !keyNamePattern.MatchString(name) {
		return store.KeyRef{}, fieldError("name", "name: want 1 to 128 letters, digits, _ or -, starting with a letter or _; got %q", name)
	}
	ref := store.KeyRef{Scope: scope, Name: name}
	if scope == "user" {
		ref.Owner = principalOf(c).IdentityID
	}
	return ref, nil
}

// keyTarget is the key a route names and who asks, once it is sure they may read it (or, with
// write, write it).
func keyTarget(c echo.Context, write bool) (store.KeyRef, principal, error) {
	ref, err := keyRef(c)
	if err != nil {
		return store.KeyRef{}, principal{}, err
	}
	p := principalOf(c)
	if err := mayAccess(p, ref.Scope, write); err != nil {
		return store.KeyRef{}, principal{}, err
	}
	return ref, p, nil
}

func checkScope(scope string) error {
	if !keyScopePattern.MatchString(scope) {
		return fieldError("scope", "scope: want system, user or pack.<pack ref>; got %q", scope)
	}
	return nil
}

// mayAccess says whether p may read (or, with write, set and delete) the keys of scope, and
// why not.
func mayAccess(p principal, scope string, write bool) error {
	switch {
	case p.scoped():
		if scope == "pack."+p.Pack || (scope == "system" && !write) {
			return nil
		}
		verb := "read"
		if write {
			verb = "write"
		}
		return forbidden("%s may %s the keys of scope pack.%s (and read system's), not of %s", p.Login, verb, p.Pack, scope)
	case scope == "user":
		if p.IdentityID == 0 {
			return forbidden("user keys belong to an identity, and %s is none (authentication is off)", p.Login)
		}
		return nil
	case write && p.Role.rank() < Operator.rank():
		return forbidden("writing the keys of scope %s needs the operator role; %s is %s (every identity writes its own user keys)", scope, p.Login, p.Role)
	}
	return nil
}

// mayDecrypt says whether p may read a key of scope in clear, and why not.
func mayDecrypt(p principal, scope string) error {
	switch {
	case p.scoped() && scope == "pack."+p.Pack:
		return nil
	case p.scoped():
		return forbidden("%s may decrypt the keys of scope pack.%s only", p.Login, p.Pack)
	case scope == "user" || p.Role == Admin:
		return nil
	}
	return forbidden("decrypting a secret key of scope %s needs the admin role (every identity decrypts its own user keys); %s is %s", scope, p.Login, p.Role)
}

func (m *Module) getKey(c echo.Context) error {
	ref, p, err := keyTarget(c, false)
	if err != nil {
		return err
	}
	decrypt, err := boolParam(c, "decrypt")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	k, err := m.deps.Store.KeyGet(ctx, ref)
	if err != nil {
		return notFound(err, "no key %s in scope %s", ref.Name, ref.Scope)
	}
	if !decrypt || !k.Secret {
		return c.JSON(http.StatusOK, dataBody[store.Key]{Data: maskKey(k)})
	}
	if err := mayDecrypt(p, ref.Scope); err != nil {
		return err
	}
	k.Value, err = m.deps.Keyring.OpenValue(k.Sealed)
	if err != nil {
		return &Error{Status: http.StatusInternalServerError, Code: "encryption_key",
			Message: fmt.Sprintf("key %s of scope %s cannot be decrypted: %v; configure the key that sealed it (ATTUNE_ENCRYPTION_OLD_KEYS or a line of --encryption-key-file)", ref.Name, ref.Scope, err)}
	}
	m.deps.Logger.InfoContext(ctx, "secret key decrypted", "scope", ref.Scope, "name", ref.Name, "by", p.Login, "execution_id", p.Execution)
	return c.JSON(http.StatusOK, dataBody[store.Key]{Data: k})
}

func (m *Module) setKey(c echo.Context) error {
	ref, p, err := keyTarget(c, true)
	if err != nil {
		return err
	}
	var req keyRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if len(req.Value) == 0 || string(req.Value) == "null" {
		return fieldError("value", "value: required, any JSON value but null (to remove a key, DELETE it)")
	}
	// A template renders a key as it is, and the worker opens what is sealed in it: a sealed
	// value comes from Attune alone, never from a caller (see refuseSealed).
	var value any
	if json.Unmarshal(req.Value, &value) == nil && pack.HoldsToken(value) {
		return fieldError("value", "value: holds a sealed value; send the value itself")
	}
	params := store.KeySetParams{KeyRef: ref, Secret: req.Secret, Value: req.Value}
	if req.TTL != "" {
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			return fieldError("ttl", "ttl: want a positive duration such as 90s, 30m or 12h; got %q", req.TTL)
		}
		params.TTL = ttl
	}
	if req.Secret {
		if params.Sealed, err = m.deps.Keyring.SealValue(req.Value); err != nil {
			return err
		}
		params.Value = nil
	}
	ctx := c.Request().Context()
	k, created, err := m.deps.Store.KeySet(ctx, params)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "key set", "scope", ref.Scope, "name", ref.Name, "secret", req.Secret, "by", p.Login, "execution_id", p.Execution)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, dataBody[store.Key]{Data: maskKey(k)})
}

func (m *Module) deleteKey(c echo.Context) error {
	ref, p, err := keyTarget(c, true)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := m.deps.Store.KeyDelete(ctx, ref); err != nil {
		return notFound(err, "no key %s in scope %s", ref.Name, ref.Scope)
	}
	m.deps.Logger.InfoContext(ctx, "key deleted", "scope", ref.Scope, "name", ref.Name, "by", p.Login, "execution_id", p.Execution)
	return c.NoContent(http.StatusNoContent)
}

// listKeys lists the keys the caller may read: those of ?scope= or, without it, every scope
// but other identities' user keys (a running action: its pack's and system's).
func (m *Module) listKeys(c echo.Context) error {
	p := principalOf(c)
	f := store.KeyFilter{Owner: p.IdentityID, Prefix: c.QueryParam("prefix")}
	if scope := c.QueryParam("scope"); scope != "" {
		if err := checkScope(scope); err != nil {
			return err
		}
		if err := mayAccess(p, scope, false); err != nil {
			return err
		}
		f.Scopes = []string{scope}
	} else if p.scoped() {
		f.Scopes = []string{"pack." + p.Pack, "system"}
	}
	pg, err := parsePage(c)
	if err != nil {
		return err
	}
	keys, total, err := m.deps.Store.KeyList(c.Request().Context(), f, pg.store())
	if err != nil {
		return err
	}
	for i := range keys {
		keys[i] = maskKey(keys[i])
	}
	return c.JSON(http.StatusOK, listResponse(keys, pg, total))
}

// maskKey shows a secret key's value as pack.Mask.
func maskKey(k store.Key) store.Key {
	if k.Secret {
		k.Value = json.RawMessage(strconv.Quote(pack.Mask))
	}
	k.Sealed = ""
	return k
}

// boolParam reads a query parameter that is true, false or absent (false).
func boolParam(c echo.Context, name string) (bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s: want true or false; got %q", name, v)
	}
	return b, nil
}

// keySweepBatch is how many expired keys or tokens one statement of the sweep deletes: small,
// so that no statement holds many locks or runs long.
const keySweepBatch = 500

// sweepKeys deletes expired keys and execution tokens every Config.KeySweepInterval until
// ctx ends. Every api replica sweeps; they skip each other's rows. Reads never wait for it:
// an expired key is invisible at once.
func (m *Module) sweepKeys(ctx context.Context) {
	t := time.NewTicker(m.cfg.KeySweepInterval)
	defer t.Stop()
	for {
		for _, sweep := range []struct {
			what string
			fn   func(context.Context, int) (int, error)
		}{{"keys", m.deps.Store.KeyDeleteExpired}, {"execution tokens", m.deps.Store.ExecutionTokenDeleteExpired}} {
			for {
				n, err := sweep.fn(ctx, keySweepBatch)
				if err != nil {
					if ctx.Err() == nil {
						m.deps.Logger.WarnContext(ctx, "sweep of expired "+sweep.what+" failed; the next one retries", "err", err)
					}
					break
				}
				if n > 0 {
					m.deps.Logger.DebugContext(ctx, "expired "+sweep.what+" deleted", "count", n)
				}
				if n < keySweepBatch {
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
