package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/api/stream"
)

// streamExecution is the data of an `execution` event on the live stream.
type streamExecution struct {
	ID             int64     `json:"id"`
	ActionRef      string    `json:"action_ref"`
	Status         string    `json:"status"`
	PreviousStatus string    `json:"previous_status,omitempty"`
	At             time.Time `json:"at"`
	// Workflow is the workflow whose task the execution runs.
	Workflow *int64 `json:"workflow,omitempty"`
}

// streamEvent is the data of an `event` event on the live stream.
type streamEvent struct {
	ID         int64     `json:"id"`
	TriggerRef string    `json:"trigger_ref"`
	At         time.Time `json:"at"`
}

// streamInquiry is the data of an `inquiry` event on the live stream: an inquiry was made
// (pending) or ended.
type streamInquiry struct {
	ID          int64     `json:"id"`
	ExecutionID int64     `json:"execution_id"`
	ActionRef   string    `json:"action_ref"`
	Status      string    `json:"status"`
	At          time.Time `json:"at"`
	Workflow    *int64    `json:"workflow,omitempty"`
}

// streamOutput is the data of an `output` event on the live stream: a chunk of what a running
// execution printed.
type streamOutput struct {
	ExecutionID int64  `json:"execution_id"`
	ActionRef   string `json:"action_ref"`
	broker.OutputChunk
	At       time.Time `json:"at"`
	Workflow *int64    `json:"workflow,omitempty"`
}

// stream serves the live stream as Server-Sent Events: executions' status changes, inquiries
// made and ended, and new events as this replica hears of them from every process, filtered by ?execution_id= (a
// workflow's includes its tasks' executions) and ?action_ref=; with ?output=true, what the
// executions matched print as well, beginning, for one execution, with what this replica
// kept of what it printed lately. The client is subscribed
// before the headers go out, so a client that reads an execution after they arrived misses
// none of its later changes (unless it falls so far behind that it is cut off, which it is
// told).
func (m *Module) stream(c echo.Context) error {
	f, err := streamFilter(c)
	if err != nil {
		return err
	}
	client, err := m.hub.Subscribe(f)
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the server is shutting down; reconnect"}
	}
	defer client.Close()

	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
	w.WriteHeader(http.StatusOK)
	out := sseWriter{w: w, flush: http.NewResponseController(w.Writer).Flush}
	if out.comment("stream open") != nil {
		return nil
	}
	heartbeat := time.NewTicker(m.cfg.StreamHeartbeat)
	defer heartbeat.Stop()
	ctx := c.Request().Context()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case n := <-client.Notifications():
			err = out.notification(n)
		case <-heartbeat.C:
			// The gate let the stream in once; the credential must hold for as long as it
			// lasts: a deleted identity, a revoked token or an expired session ends it here.
			if _, authErr := m.authenticate(c); authErr != nil {
				var apiErr *Error
				detail := errorDetail{Code: "unauthorized", Message: "the credential of this stream is no longer valid"}
				if errors.As(authErr, &apiErr) {
					detail = errorDetail{Code: apiErr.Code, Message: apiErr.Message}
				}
				_ = out.event("error", errorBody{Error: detail})
				return nil
			}
			err = out.comment("heartbeat")
		case <-client.Done():
			if errors.Is(client.Err(), stream.ErrTooSlow) {
				m.deps.Logger.WarnContext(ctx, "live-stream client cut off: too far behind", "remote_addr", c.Request().RemoteAddr)
				_ = out.event("error", errorBody{Error: errorDetail{Code: "too_slow", Message: fmt.Sprintf(
					"this stream fell more than %d notifications behind and is closed; reconnect, and re-read what you follow",
					cap(client.Notifications()))}})
			}
			return nil // ErrClosed: the server is stopping
		}
		if err != nil {
			return nil // the client went away
		}
	}
}

// streamFilter reads ?execution_id=, ?action_ref= and ?output=.
func streamFilter(c echo.Context) (stream.Filter, error) {
	f := stream.Filter{ActionRef: c.QueryParam("action_ref")}
	if raw := c.QueryParam("output"); raw != "" {
		output, err := strconv.ParseBool(raw)
		if err != nil {
			return f, badRequest("invalid output %q: want true or false", raw)
		}
		f.Output = output
	}
	if raw := c.QueryParam("execution_id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id < 1 {
			return f, badRequest("invalid execution_id %q: want a positive whole number", raw)
		}
		f.ExecutionID = id
	}
	return f, nil
}

// deliver hands a batch of notifications from the replica's queue to the live streams.
func (m *Module) deliver(_ context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.NotificationCreated](msg)
	if err != nil {
		return err
	}
	m.hub.Deliver(p.Notifications)
	return nil
}

// sseWriter writes Server-Sent Events, each flushed at once.
type sseWriter struct {
	w     *echo.Response
	flush func() error
}

func (s sseWriter) notification(n broker.Notification) error {
	switch n.Kind {
	case broker.NotifyExecution:
		return s.event(n.Kind, streamExecution{ID: n.ID, ActionRef: n.Ref, Status: n.Status, PreviousStatus: n.PreviousStatus, At: n.At,
			Workflow: n.Workflow})
	case broker.NotifyEvent:
		return s.event(n.Kind, streamEvent{ID: n.ID, TriggerRef: n.Ref, At: n.At})
	case broker.NotifyInquiry:
		return s.event(n.Kind, streamInquiry{ID: n.ID, ExecutionID: n.Execution, ActionRef: n.Ref, Status: n.Status, At: n.At,
			Workflow: n.Workflow})
	case broker.NotifyOutput:
		if o := n.Output; o != nil {
			return s.event(n.Kind, streamOutput{ExecutionID: n.ID, ActionRef: n.Ref, OutputChunk: *o, At: n.At, Workflow: n.Workflow})
		}
	}
	return nil // a kind this server does not know: a newer sender's, for newer clients
}

// event writes one event with a one-line JSON data field (JSON escapes newlines).
func (s sseWriter) event(name string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", name, err)
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	return s.flush()
}

// comment writes an SSE comment, which clients ignore: a heartbeat, or the first bytes.
func (s sseWriter) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.flush()
}
