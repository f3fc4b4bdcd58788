package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// inquiryRunner is the runner of actions that wait for a person's answer (core.ask): the
// executor records the inquiry, and the answer, the timeout or a cancel ends the execution.
const inquiryRunner = "inquiry"

// askParams are the parameters of an ask action, as core.ask declares them.
type askParams struct {
	Prompt         string          `json:"prompt"`
	Schema         json.RawMessage `json:"schema"`
	Roles          []string        `json:"roles"`
	Users          []string        `json:"users"`
	TimeoutSeconds *float64        `json:"timeout_seconds"`
}

// defaultAskTimeout is how long an inquiry waits when its action declares no timeout_seconds.
const defaultAskTimeout = 24 * time.Hour

// answerRoles are the roles an inquiry may name.
var answerRoles = []string{"admin", "operator", "viewer"}

// read checks the parameters of exec, and returns what the inquiry is made of or why it cannot
// be made.
func (p *askParams) read(exec store.Execution) (store.InquiryStartParams, error) {
	if err := json.Unmarshal(exec.Parameters, p); err != nil {
		return store.InquiryStartParams{}, fmt.Errorf("parameters: %w", err)
	}
	if p.Prompt == "" {
		return store.InquiryStartParams{}, errors.New("prompt: required")
	}
	if len(p.Schema) == 0 || string(p.Schema) == "null" {
		p.Schema = json.RawMessage(`{"type": "object"}`)
	}
	if _, err := pack.CompileAnswerSchema(p.Schema); err != nil {
		return store.InquiryStartParams{}, err
	}
	for i, r := range p.Roles {
		if !slices.Contains(answerRoles, r) {
			return store.InquiryStartParams{}, fmt.Errorf("roles[%d]: unknown role %q; want admin, operator or viewer", i, r)
		}
	}
	timeout := defaultAskTimeout
	if p.TimeoutSeconds != nil {
		if *p.TimeoutSeconds <= 0 {
			return store.InquiryStartParams{}, fmt.Errorf("timeout_seconds: want more than 0, got %v", *p.TimeoutSeconds)
		}
		// Past what a duration holds the conversion wraps around, into the past.
		if maxSeconds := math.Floor(time.Duration(math.MaxInt64).Seconds()); *p.TimeoutSeconds > maxSeconds {
			return store.InquiryStartParams{}, fmt.Errorf("timeout_seconds: want at most %.0f, got %v", maxSeconds, *p.TimeoutSeconds)
		}
		timeout = time.Duration(*p.TimeoutSeconds * float64(time.Second))
	}
	// A prompt that carries one of the execution's secret values (a workflow's secret input,
	// say, or a secret key a template sealed into it) shows it masked: an inquiry is read by
	// everyone who may answer it.
	prompt := p.Prompt
	if raw, err := json.Marshal(prompt); err == nil {
		_ = json.Unmarshal(pack.MaskSealed(pack.MaskValues(raw, exec.Parameters, exec.Secrets)), &prompt)
	}
	return store.InquiryStartParams{Execution: exec.ID, Prompt: prompt, Schema: p.Schema, Roles: p.Roles, Users: p.Users,
		Timeout: timeout}, nil
}

// startInquiry starts an ask execution in place of a dispatch: in one transaction it moves to
// running and its inquiry is made. A second start finds it running and does nothing. Nothing
// waits in this process: the inquiry is a row until something ends it.
func (m *Module) startInquiry(ctx context.Context, exec store.Execution) error {
	var p askParams
	params, err := p.read(exec)
	if err != nil {
		return m.failUnstarted(ctx, exec.ID, fmt.Sprintf("cannot ask: %v", err))
	}
	inq, running, ok, err := m.deps.Store.InquiryStart(ctx, params)
	if err != nil || !ok {
		return err
	}
	m.notify(store.ExecutionScheduled, running)
	m.notifyInquiry(inq, running)
	m.deps.Logger.InfoContext(ctx, "inquiry made", "inquiry_id", inq.ID, "execution_id", exec.ID, "timeout_at", inq.TimeoutAt)
	return nil
}

// failUnstarted is fail, announcing the ending as a worker would: a workflow waiting on the
// execution goes on at once.
func (m *Module) failUnstarted(ctx context.Context, id int64, reason string) error {
	exec, ok, err := m.deps.Store.ExecutionTransition(ctx, store.ExecutionTransition{
		ID: id, From: []string{store.ExecutionRequested, store.ExecutionScheduled}, To: store.ExecutionFailed, Reason: reason,
	})
	if err != nil || !ok {
		return err
	}
	m.notify("", exec)
	return m.announce(ctx, exec)
}

// announce sends the completion of an ended execution to the completion listeners: its
// workflow advances and its policy's waiters go. A lost one is made good by the workflow loop
// (a stalled workflow) and the sweeper (waiters).
func (m *Module) announce(ctx context.Context, exec store.Execution) error {
	finished := time.Now().UTC()
	if exec.FinishedAt != nil {
		finished = *exec.FinishedAt
	}
	return m.deps.Relay.Send(ctx, broker.InTrace(exec.Trace(), broker.ExecutionCompleted{ExecutionID: exec.ID, ActionRef: exec.ActionRef,
		Status: exec.Status, FinishedAt: finished, HeldSlot: &exec.HeldSlot, Workflow: exec.WorkflowID()}))
}

// notifyInquiry tells the live stream that inq, of exec, reached its status.
func (m *Module) notifyInquiry(inq store.Inquiry, exec store.Execution) {
	if m.deps.Notifier != nil {
		m.deps.Notifier.Notify(broker.InquiryChanged(inq.ID, exec.ID, exec.ActionRef, inq.Status, inq.Workflow, inq.Updated))
	}
}

// inquiryBatch bounds the inquiries one pass of the inquiry loop ends.
const inquiryBatch = 100

// inquiryLoop ends the inquiries past their timeout (their execution ends timeout) and those
// whose execution is being cancelled or ended some other way. Every end is conditional, so of
// N executors each inquiry is ended by one, and an answer that came first wins.
func (m *Module) inquiryLoop(ctx context.Context) error {
	return m.every(ctx, time.Second, "end due inquiries", m.endInquiries)
}

func (m *Module) endInquiries(ctx context.Context) error {
	due, err := m.deps.Store.InquiriesDue(ctx, inquiryBatch)
	if err != nil {
		return err
	}
	orphaned, err := m.deps.Store.InquiriesOrphaned(ctx, inquiryBatch)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range due {
		errs = append(errs, m.endInquiry(ctx, id, m.deps.Store.InquiryTimeOut))
	}
	for _, id := range orphaned {
		errs = append(errs, m.endInquiry(ctx, id, m.deps.Store.InquiryCancel))
	}
	return errors.Join(errs...)
}

// endInquiry ends inquiry id with end, and announces it. An inquiry something else ended
// first is left alone.
func (m *Module) endInquiry(ctx context.Context, id int64, end func(context.Context, int64) (store.Inquiry, store.Execution, bool, error)) error {
	inq, exec, ended, err := end(ctx, id)
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "inquiry ended", "inquiry_id", inq.ID, "execution_id", exec.ID, "status", inq.Status)
	m.notifyInquiry(inq, exec)
	if !ended {
		return nil // the execution had ended before: its ending was announced then
	}
	m.notify("", exec)
	return m.announce(ctx, exec)
}

// cancelInquiry ends the inquiry of canceling execution exec, and reports whether it has one.
func (m *Module) cancelInquiry(ctx context.Context, exec store.Execution) (bool, error) {
	inq, err := m.deps.Store.InquiryOfExecution(ctx, exec.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, m.endInquiry(ctx, inq.ID, m.deps.Store.InquiryCancel)
}
