package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// Events fired by hand (POST /events) and by webhooks (POST /webhooks/{url}).

type eventRequest struct {
	TriggerRef string         `json:"trigger_ref"`
	Payload    map[string]any `json:"payload"`
}

type eventCreated struct {
	EventID int64  `json:"event_id"`
	TraceID string `json:"trace_id"`
}

// createEvent fires any trigger by hand, with the payload checked against the trigger's
// output schema.
func (m *Module) createEvent(c echo.Context) error {
	var req eventRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.TriggerRef == "" {
		return badRequest("trigger_ref: required")
	}
	ctx := c.Request().Context()
	trigger, err := m.deps.Store.TriggerGetByRef(ctx, req.TriggerRef)
	if errors.Is(err, store.ErrNotFound) {
		return badRequest("trigger_ref: no trigger %q", req.TriggerRef)
	}
	if err != nil {
		return err
	}
	var output pack.Schema
	if err := json.Unmarshal(trigger.Output, &output); err != nil {
		return fmt.Errorf("decode output schema of trigger %s: %w", trigger.Ref, err)
	}
	if err := output.CheckPayload(req.Payload); err != nil {
		return badRequest("payload: %v", err)
	}
	return m.fire(c, req.TriggerRef, req.Payload, "api")
}

// webhook turns any JSON posted to /webhooks/{url} into a core.webhook event; rules whose
// trigger_params.url is {url} see it.
func (m *Module) webhook(c echo.Context) error {
	url := c.Param("url")
	route, err := m.admitWebhook(c, url)
	if err != nil {
		return err
	}
	// Refusals come before the body is read where they can. A url without a secret spends its
	// rate at once; one with a secret needs its signature's header first, and spends its rate
	// only once the signature holds, so that unsigned posts cannot use up its sender's rate.
	var sig []byte
	if route.Registered {
		if sig, err = signatureOf(c, url); err != nil {
			return err
		}
	} else if err := m.limitWebhook(c, url); err != nil {
		return err
	}
	raw, err := io.ReadAll(io.LimitReader(c.Request().Body, maxBody+1))
	if err != nil {
		return badRequest("read request body: %v", err)
	}
	if len(raw) > maxBody {
		return tooLarge(maxBody)
	}
	if route.Registered {
		if err := checkSignature(url, route.Secret, sig, raw); err != nil {
			return err
		}
		if err := m.limitWebhook(c, url); err != nil {
			return err
		}
	}
	var body any
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			return badRequest("webhook body is not JSON: %v", err)
		}
	}
	payload := map[string]any{"url": url, "headers": webhookHeaders(c.Request().Header), "body": body}
	return m.fire(c, "core.webhook", payload, "webhook")
}

// webhookHeaders keeps the request's headers for rules to look at, minus anything that looks
// like a credential: the payload is stored and shown through the API, and senders put shared
// secrets in headers of their own naming (X-Gitlab-Token, X-Api-Key, signatures).
func webhookHeaders(h http.Header) map[string]any {
	out := make(map[string]any, len(h))
	for name, values := range h {
		if isSecretHeader(name) {
			continue
		}
		out[name] = strings.Join(values, ", ")
	}
	return out
}

func isSecretHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie", "set-cookie":
		return true
	}
	for _, word := range []string{"token", "secret", "key", "signature", "password", "auth"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	return false
}

// fire records an event and announces it. Once the row is committed the event is accepted:
// the announcement goes through the relay, which keeps it while the broker is away, so the
// caller gets 202 at once whatever the broker does.
func (m *Module) fire(c echo.Context, triggerRef string, payload map[string]any, source string) error {
	ctx := c.Request().Context()
	body, err := json.Marshal(payload)
	if err != nil {
		return badRequest("payload: %v", err)
	}
	ev, err := m.deps.Store.EventInsert(ctx, store.EventInsertParams{TriggerRef: triggerRef, Payload: body, Source: source})
	if err != nil {
		return err
	}
	m.notify(broker.EventNotification(ev.ID, ev.TriggerRef, ev.Created))
	if err := m.deps.Relay.Send(ctx, broker.NewEventCreated(ev.ID, ev.TriggerRef, "", ev.Payload, ev.Created, ev.Trace())); err != nil {
		m.deps.Logger.WarnContext(ctx, "event recorded but not announced; the sweeper will", "event_id", ev.ID, "trace_id", ev.Trace(), "err", err)
	}
	return c.JSON(http.StatusAccepted, dataBody[eventCreated]{Data: eventCreated{EventID: ev.ID, TraceID: ev.Trace()}})
}
