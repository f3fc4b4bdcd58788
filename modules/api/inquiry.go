package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

func (m *Module) listInquiries(c echo.Context) error {
	f := store.InquiryFilter{Status: c.QueryParam("status")}
	if f.Status != "" && !slices.Contains(store.InquiryStatuses, f.Status) {
		return badRequest("invalid status %q: want one of %v", f.Status, store.InquiryStatuses)
	}
	for _, q := range []struct {
		name string
		into **int64
	}{{"execution_id", &f.Execution}, {"workflow_id", &f.Workflow}} {
		raw := c.QueryParam(q.name)
		if raw == "" {
			continue
		}
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id < 1 {
			return badRequest("invalid %s %q: want an execution id, a positive whole number", q.name, raw)
		}
		*q.into = &id
	}
	var err error
	if f.Window, err = createdWindow(c); err != nil {
		return err
	}
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.Inquiry, int, error) {
		return m.deps.Store.InquiryList(ctx, f, page)
	})
}

func (m *Module) getInquiry(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	inq, err := m.deps.Store.InquiryGet(c.Request().Context(), id)
	return one(c, inq, notFound(err, "no inquiry %d", id))
}

// respondRequest is the body of POST /inquiries/{id}/respond: the answer under response, so
// that the answer itself may be any JSON value its schema allows.
type respondRequest struct {
	Response json.RawMessage `json:"response"`
}

// respond records an answer: the caller must be one the inquiry allows, the inquiry pending,
// and the answer must fit its schema. The answer ends the inquiry's execution completed with
// the answer as its result, in the same transaction; its completion then goes to the
// executors, so a workflow asking goes on exactly as after any task's ending.
func (m *Module) respond(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	inq, err := m.deps.Store.InquiryGet(ctx, id)
	if err != nil {
		return notFound(err, "no inquiry %d", id)
	}
	if inq.Status != store.InquiryPending {
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf("inquiry %d is already %s", id, inq.Status)}
	}
	who := principalOf(c)
	if !mayAnswer(inq, who) {
		return forbidden("inquiry %d may be answered by %s; %s is %s", id, answerers(inq), who.Login, who.Role)
	}
	var req respondRequest
	if err := decodeBodyUpTo(c, &req, maxParametersBody); err != nil {
		return err
	}
	if len(req.Response) == 0 {
		return fieldError("response", "response: required: the answer, JSON that fits the inquiry's schema")
	}
	// The answer is published to the workflow's variables, whence a task's input may take it
	// to a worker, which opens what is sealed in it: sealed values come from Attune alone.
	var sent any
	if json.Unmarshal(req.Response, &sent) == nil && pack.HoldsToken(sent) {
		return fieldError("response", "response: holds a sealed value; send the value itself")
	}
	schema, err := pack.CompileAnswerSchema(inq.Schema)
	if err != nil {
		return fmt.Errorf("inquiry %d: %w", id, err) // checked when the inquiry was made
	}
	if err := schema.Check("response", req.Response); err != nil {
		var perr *pack.Error
		if !errors.As(err, &perr) {
			return badRequest("response: %v", err)
		}
		return invalid(err)
	}
	inq, exec, err := m.deps.Store.InquiryRespond(ctx, id, who.Login, req.Response)
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "inquiry answered", "inquiry_id", id, "execution_id", exec.ID, "login", who.Login)
	m.notifyExecution(exec, store.ExecutionRunning)
	m.notify(broker.InquiryChanged(inq.ID, exec.ID, exec.ActionRef, inq.Status, inq.Workflow, inq.Updated))
	// A completion lost here is made good by the executors: a workflow whose task ended
	// without advancing it is advanced by their next pass.
	m.announceEnded(ctx, exec, "answered inquiry's execution not announced")
	return answer(c, http.StatusOK, inq)
}

// mayAnswer reports whether who may answer inq: an admin always; an identity the inquiry
// names, or whose role it names; with neither names nor roles, any operator.
func mayAnswer(inq store.Inquiry, who principal) bool {
	switch {
	case who.Role == Admin, slices.Contains(inq.Users, who.Login), slices.Contains(inq.Roles, string(who.Role)):
		return true
	case len(inq.Users) == 0 && len(inq.Roles) == 0:
		return who.Role.rank() >= Operator.rank()
	}
	return false
}

// answerers says who may answer inq, for a refusal.
func answerers(inq store.Inquiry) string {
	var who []string
	if len(inq.Roles) > 0 {
		who = append(who, "roles "+strings.Join(inq.Roles, ", "))
	}
	if len(inq.Users) > 0 {
		who = append(who, "users "+strings.Join(inq.Users, ", "))
	}
	if len(who) == 0 {
		return "operators and admins"
	}
	return strings.Join(who, " or ") + " (and admins)"
}
