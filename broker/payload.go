package broker

import (
	"encoding/json"
	"time"
)

// EventCreated announces a new row in attune.event.
type EventCreated struct {
	EventID    int64  `json:"event_id"`
	TriggerRef string `json:"trigger_ref"`
	// RuleRef is set when the event was fired for one rule only (a timer of that rule).
	RuleRef string `json:"rule_ref,omitempty"`
	// Payload is the event's payload when it is small enough to ride along, which spares the
	// rule matcher reading the row back. Events are immutable, so the copy cannot be stale.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Created is when the event was recorded (PostgreSQL's clock), for the latency metrics.
	Created time.Time `json:"created,omitzero"`
}

// maxPayloadSnapshot is the largest payload an EventCreated carries.
const maxPayloadSnapshot = 64 << 10

// NewEventCreated announces an event, with its payload when that is small, in the trace the
// event starts (none when traceID is empty): everything its rules cause joins that trace.
func NewEventCreated(id int64, triggerRef, ruleRef string, payload json.RawMessage, created time.Time, traceID string) Payload {
	e := EventCreated{EventID: id, TriggerRef: triggerRef, RuleRef: ruleRef, Created: created}
	if len(payload) <= maxPayloadSnapshot {
		e.Payload = payload
	}
	return InTrace(traceID, e)
}

// MessageType implements Payload.
func (EventCreated) MessageType() Type { return TypeEventCreated }

// EnforcementCreated announces that a rule matched an event. ActionRef and Config, when set,
// are the rule's action and the rendered parameters at match time, which spares the executor
// reading the enforcement and its rule back. Failure, when set, says why the rule's parameters
// could not be rendered: the execution is created failed with it.
type EnforcementCreated struct {
	EnforcementID int64           `json:"enforcement_id"`
	RuleRef       string          `json:"rule_ref"`
	EventID       int64           `json:"event_id"`
	ActionRef     string          `json:"action_ref,omitempty"`
	Config        json.RawMessage `json:"config,omitempty"`
	Failure       string          `json:"failure,omitempty"`
	// Created is when the enforcement was recorded (PostgreSQL's clock), for the latency
	// metrics.
	Created time.Time `json:"created,omitzero"`
}

// MessageType implements Payload.
func (EnforcementCreated) MessageType() Type { return TypeEnforcementCreated }

// ExecutionRequested asks the executor to admit and schedule an execution.
type ExecutionRequested struct {
	ExecutionID int64  `json:"execution_id"`
	ActionRef   string `json:"action_ref"`
}

// MessageType implements Payload.
func (ExecutionRequested) MessageType() Type { return TypeExecutionRequested }

// ExecutionDispatched hands a scheduled execution to the workers that have its runner; the
// first to claim it runs it. It carries the action as it was when the execution was
// scheduled, so the worker runs it without reading the action back and a pack re-registered
// meanwhile does not change a run already on its way.
type ExecutionDispatched struct {
	ExecutionID int64          `json:"execution_id"`
	ActionRef   string         `json:"action_ref"`
	Action      ActionSnapshot `json:"action"`
	// WorkerSelector is the execution's selector in canonical form ("k=v,k2=v2", keys
	// sorted), empty for none: a selected execution goes to the queue of its selector
	// (SelectorDispatchQueue), which only workers with those labels consume.
	WorkerSelector string `json:"worker_selector,omitempty"`
}

// ActionSnapshot is what a worker needs of an action to run it.
type ActionSnapshot struct {
	RunnerType string `json:"runner_type"`
	PackRef    string `json:"pack_ref"`
	PackPath   string `json:"pack_path,omitempty"`
	// PackVersion is the hash of the pack version the action runs from, which a worker
	// fetches into its own cache; it wins over PackPath.
	PackVersion    string `json:"pack_version,omitempty"`
	EntryPoint     string `json:"entry_point,omitempty"`
	OutputFormat   string `json:"output_format"`
	TimeoutSeconds int    `json:"timeout_seconds"`
}

// MessageType implements Payload.
func (ExecutionDispatched) MessageType() Type { return TypeExecutionDispatched }

// MessageTarget implements Targeted.
func (d ExecutionDispatched) MessageTarget() string {
	return dispatchTarget(d.Action.RunnerType, d.WorkerSelector)
}

// WorkerSelectorAdded tells every worker that executions of runner are now dispatched to the
// queue of selector (canonical form, as ExecutionDispatched has it): a worker whose labels
// satisfy it starts consuming that queue. A worker that starts later finds the selector in
// PostgreSQL.
type WorkerSelectorAdded struct {
	Runner         string `json:"runner"`
	WorkerSelector string `json:"worker_selector"`
}

// MessageType implements Payload.
func (WorkerSelectorAdded) MessageType() Type { return TypeWorkerSelectorAdded }

// ExecutionCompleted reports that an execution reached a terminal status.
type ExecutionCompleted struct {
	ExecutionID int64     `json:"execution_id"`
	ActionRef   string    `json:"action_ref"`
	Status      string    `json:"status"`
	FinishedAt  time.Time `json:"finished_at"`
	// HeldSlot says whether the execution held a place under a policy (a slot, or a place in
	// its queue) until this ending; nil when the sender does not know. An ending that held
	// none admitted nobody, so the completion listener has no waiter to schedule for it.
	HeldSlot *bool `json:"held_slot,omitempty"`
	// Workflow is the workflow execution this one ran a task of: its ending advances that
	// workflow.
	Workflow *int64 `json:"workflow,omitempty"`
}

// MessageType implements Payload.
func (ExecutionCompleted) MessageType() Type { return TypeExecutionCompleted }

// ExecutionCancelRequested asks the worker running an execution to stop it.
type ExecutionCancelRequested struct {
	ExecutionID int64  `json:"execution_id"`
	Worker      string `json:"worker"`
}

// MessageType implements Payload.
func (ExecutionCancelRequested) MessageType() Type { return TypeExecutionCancelRequested }

// MessageTarget implements Targeted.
func (c ExecutionCancelRequested) MessageTarget() string { return c.Worker }

// NotificationCreated carries a batch of changes one process committed to every api
// replica's live stream. It is best effort (see Type.BestEffort): a process gathers what it
// commits and sends it as one message per batch, and a lost batch costs a live view some
// updates, never the pipeline anything.
type NotificationCreated struct {
	Notifications []Notification `json:"notifications"`
}

// MessageType implements Payload.
func (NotificationCreated) MessageType() Type { return TypeNotificationCreated }

// Kinds of notification.
const (
	NotifyExecution = "execution" // an execution's status changed, or it was created
	NotifyEvent     = "event"     // an event was created
	NotifyInquiry   = "inquiry"   // an inquiry was made, answered, timed out or cancelled
	NotifyOutput    = "output"    // a running execution printed something
)

// Notification is one committed change: an execution or an inquiry that reached Status, or
// an event.
type Notification struct {
	Kind string `json:"kind"`
	ID   int64  `json:"id"`
	// Ref is the execution's (or the inquiry's execution's) action ref, or the event's
	// trigger ref.
	Ref    string `json:"ref"`
	Status string `json:"status,omitempty"`
	// PreviousStatus is the status the execution left, when the process that moved it knows.
	PreviousStatus string    `json:"previous_status,omitempty"`
	At             time.Time `json:"at"`
	// Workflow is the workflow execution whose task this execution runs, so that a stream
	// following the workflow sees its children (and their inquiries).
	Workflow *int64 `json:"workflow,omitempty"`
	// Execution is the execution an inquiry belongs to.
	Execution int64 `json:"execution,omitempty"`
	// Output is what a running execution printed, for a notification of kind output.
	Output *OutputChunk `json:"output,omitempty"`
}

// OutputChunk is a piece of what a running execution printed, already scrubbed of its secret
// values.
type OutputChunk struct {
	// Seq numbers an execution's chunks from 1, over both streams, so that a reader keeps them
	// in order and sees a gap where one was lost on the way. Output the worker dropped takes
	// no number: Dropped says it instead.
	Seq int64 `json:"seq"`
	// Stream is "stdout" or "stderr".
	Stream string `json:"stream"`
	Text   string `json:"text"`
	// Dropped counts the bytes printed just before this chunk that were not sent live, because
	// publishing fell behind.
	Dropped int64 `json:"dropped,omitempty"`
	// Cut says the execution's live output reached its bound: nothing more of it is sent live
	// (its stored output keeps its end).
	Cut bool `json:"cut,omitempty"`
	// End marks the last chunk: the action's output has ended.
	End bool `json:"end,omitempty"`
}

// OutputPrinted notifies that execution id of actionRef (a task of workflow when not nil)
// printed chunk, sent at at.
func OutputPrinted(id int64, actionRef string, workflow *int64, chunk OutputChunk, at time.Time) Notification {
	return Notification{Kind: NotifyOutput, ID: id, Ref: actionRef, At: at, Workflow: workflow, Output: &chunk}
}

// Bytes is how much output n carries: what bounds a batch of notifications by size.
func (n Notification) Bytes() int {
	if n.Output == nil {
		return 0
	}
	return len(n.Output.Text)
}

// ExecutionChanged notifies that execution id of actionRef reached status at at, from
// previous ("" when unknown or when it was created so).
func ExecutionChanged(id int64, actionRef, status, previous string, at time.Time) Notification {
	return Notification{Kind: NotifyExecution, ID: id, Ref: actionRef, Status: status, PreviousStatus: previous, At: at}
}

// InWorkflow returns n as the change of a task of workflow (nil: of no workflow).
func (n Notification) InWorkflow(workflow *int64) Notification {
	n.Workflow = workflow
	return n
}

// InquiryChanged notifies that inquiry id, of execution (running actionRef, a task of
// workflow when not nil), reached status at at.
func InquiryChanged(id, execution int64, actionRef, status string, workflow *int64, at time.Time) Notification {
	return Notification{Kind: NotifyInquiry, ID: id, Ref: actionRef, Status: status, At: at, Workflow: workflow, Execution: execution}
}

// EventNotification notifies that event id of triggerRef was created at at.
func EventNotification(id int64, triggerRef string, at time.Time) Notification {
	return Notification{Kind: NotifyEvent, ID: id, Ref: triggerRef, At: at}
}
