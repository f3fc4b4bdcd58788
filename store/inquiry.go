package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Inquiry statuses (attune.inquiry). An inquiry is pending until the first of its answer,
// its timeout and its execution's cancel ends it.
const (
	InquiryPending   = "pending"
	InquiryResponded = "responded"
	InquiryTimedOut  = "timed_out"
	InquiryCancelled = "cancelled"
)

// InquiryStatuses lists every inquiry status.
var InquiryStatuses = []string{InquiryPending, InquiryResponded, InquiryTimedOut, InquiryCancelled}

// Inquiry is a row of attune.inquiry: a question an execution of core.ask waits on.
type Inquiry struct {
	ID        int64 `json:"id"`
	Execution int64 `json:"execution_id"`
	// Workflow is the workflow whose task asks, nil outside a workflow.
	Workflow *int64          `json:"workflow_id"`
	Prompt   string          `json:"prompt"`
	Schema   json.RawMessage `json:"schema"`
	// Roles and Users say who may answer besides admins; both empty: any operator.
	Roles       []string        `json:"roles"`
	Users       []string        `json:"users"`
	Status      string          `json:"status"`
	Response    json.RawMessage `json:"response"`
	RespondedBy *string         `json:"responded_by"`
	TimeoutAt   time.Time       `json:"timeout_at"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
	EndedAt     *time.Time      `json:"ended_at"`
}

const inquiryColumns = `inquiry.id, inquiry.execution, inquiry.workflow, inquiry.prompt, inquiry.schema, inquiry.roles, inquiry.users,
	inquiry.status, inquiry.response, inquiry.responded_by, inquiry.timeout_at, inquiry.created, inquiry.updated, inquiry.ended_at`

func scanInquiry(row pgx.Row) (Inquiry, error) {
	var i Inquiry
	err := row.Scan(&i.ID, &i.Execution, &i.Workflow, &i.Prompt, &i.Schema, &i.Roles, &i.Users, &i.Status, &i.Response,
		&i.RespondedBy, &i.TimeoutAt, &i.Created, &i.Updated, &i.EndedAt)
	return i, err
}

// InquiryStartParams describe the inquiry of a scheduled execution of core.ask.
type InquiryStartParams struct {
	Execution int64
	Prompt    string
	Schema    json.RawMessage
	Roles     []string
	Users     []string
	Timeout   time.Duration
}

// InquiryStart moves scheduled execution p.Execution to running and creates its inquiry, in
// one transaction, and reports whether this call did: a second start (a redelivered request,
// the sweeper's) finds the execution running and changes nothing.
func (s *Store) InquiryStart(ctx context.Context, p InquiryStartParams) (Inquiry, Execution, bool, error) {
	var inq Inquiry
	var exec Execution
	var started bool
	err := s.InTx(ctx, func(q *Queries) error {
		var err error
		exec, started, err = q.ExecutionTransition(ctx, ExecutionTransition{
			ID: p.Execution, From: []string{ExecutionScheduled}, To: ExecutionRunning,
		})
		if err != nil || !started {
			return err
		}
		inq, err = scanInquiry(q.db.QueryRow(ctx, `
			INSERT INTO attune.inquiry (execution, workflow, prompt, schema, roles, users, timeout_at)
			SELECT e.id, CASE WHEN e.task_name IS NOT NULL THEN e.parent END, $2, $3, $4, $5, now() + make_interval(secs => $6)
			FROM attune.execution e WHERE e.id = $1
			RETURNING `+inquiryColumns,
			p.Execution, p.Prompt, jsonOr(p.Schema, `{"type": "object"}`), secretNames(p.Roles), secretNames(p.Users), p.Timeout.Seconds()))
		return translate(err)
	})
	if err != nil {
		return Inquiry{}, Execution{}, false, fmt.Errorf("start the inquiry of execution %d: %w", p.Execution, err)
	}
	return inq, exec, started, nil
}

// InquiryGet returns inquiry id.
func (q *Queries) InquiryGet(ctx context.Context, id int64) (Inquiry, error) {
	i, err := scanInquiry(q.db.QueryRow(ctx, `SELECT `+inquiryColumns+` FROM attune.inquiry WHERE id = $1`, id))
	if err != nil {
		return Inquiry{}, fmt.Errorf("get inquiry %d: %w", id, translate(err))
	}
	return i, nil
}

// InquiryFilter narrows InquiryList; zero fields match everything.
type InquiryFilter struct {
	Status string
	// Execution keeps the inquiry of this execution; Workflow those of this workflow's tasks.
	Execution *int64
	Workflow  *int64
	Window
}

// InquiryList returns a page of inquiries, newest first.
func (q *Queries) InquiryList(ctx context.Context, f InquiryFilter, page Page) ([]Inquiry, int, error) {
	var w where
	if f.Status != "" {
		w.add("status = $%d", f.Status)
	}
	if f.Execution != nil {
		w.add("execution = $%d", *f.Execution)
	}
	if f.Workflow != nil {
		w.add("workflow = $%d", *f.Workflow)
	}
	w.window(f.Window)
	return list(ctx, q.db, "inquiries", w.from("attune.inquiry"), inquiryColumns, `id DESC`, page, scanInquiry, w.args...)
}

// InquiryRespond records response as the answer of pending inquiry id, by login, and ends its
// running execution completed with the answer as its result, in one transaction. An inquiry
// that is no longer pending, past its timeout, or whose execution is being cancelled, is
// ErrConflict naming why: of two answers, exactly one is recorded.
func (s *Store) InquiryRespond(ctx context.Context, id int64, login string, response json.RawMessage) (Inquiry, Execution, error) {
	inq, exec, _, err := s.inquiryEnd(ctx, id, InquiryResponded, login, response, ExecutionCompleted, "")
	return inq, exec, err
}

// InquiryTimeOut ends pending inquiry id timed out and its execution timeout, with the
// reason; ErrConflict when it is no longer pending (answered first, say). It reports whether
// it ended the execution, as InquiryCancel does.
func (s *Store) InquiryTimeOut(ctx context.Context, id int64) (Inquiry, Execution, bool, error) {
	return s.inquiryEnd(ctx, id, InquiryTimedOut, "", nil, ExecutionTimeout, "")
}

// InquiryCancel ends pending inquiry id cancelled, and its execution cancelled when it is
// being cancelled (an execution already ended is left as it is: the report is false);
// ErrConflict when the inquiry is no longer pending.
func (s *Store) InquiryCancel(ctx context.Context, id int64) (Inquiry, Execution, bool, error) {
	return s.inquiryEnd(ctx, id, InquiryCancelled, "", nil, ExecutionCancelled, "cancelled while waiting for an answer")
}

// inquiryEnd moves pending inquiry id to status and its execution to execStatus in one
// transaction. The inquiry's row is locked first, by the conditional update, so whichever of
// an answer, a timeout and a cancel comes first wins and the others find it ended.
func (s *Store) inquiryEnd(ctx context.Context, id int64, status, login string, response json.RawMessage, execStatus, reason string) (Inquiry, Execution, bool, error) {
	var inq Inquiry
	var exec Execution
	var ended bool
	err := s.InTx(ctx, func(q *Queries) error {
		var by *string
		if login != "" {
			by = &login
		}
		var err error
		// An answer is taken until the timeout and not after, though the inquiry stays
		// pending until an executor's loop times it out: past timeout_at it has timed out.
		inq, err = scanInquiry(q.db.QueryRow(ctx, `
			UPDATE attune.inquiry SET status = $2, responded_by = $3, response = $4, ended_at = now()
			WHERE id = $1 AND status = 'pending' AND ($2 <> 'responded' OR timeout_at > now())
			RETURNING `+inquiryColumns, id, status, by, jsonOrNil(response)))
		if isNoRows(err) {
			current, err := q.InquiryGet(ctx, id)
			if err != nil {
				return err
			}
			if current.Status == InquiryPending {
				return described(ErrConflict, "inquiry %d timed out at %s", id, current.TimeoutAt.UTC().Format(time.RFC3339))
			}
			return described(ErrConflict, "inquiry %d is already %s", id, current.Status)
		}
		if err != nil {
			return translate(err)
		}
		from := []string{ExecutionRunning}
		switch status {
		case InquiryTimedOut:
			reason = fmt.Sprintf("no answer to inquiry %d by %s", id, inq.TimeoutAt.UTC().Format(time.RFC3339))
		case InquiryCancelled:
			from = []string{ExecutionCanceling, ExecutionRunning}
		}
		exec, ended, err = q.ExecutionTransition(ctx, ExecutionTransition{ID: inq.Execution, From: from, To: execStatus,
			Result: response, Reason: reason})
		if err != nil || ended {
			return err
		}
		if exec, err = q.ExecutionGet(ctx, inq.Execution); err != nil {
			return err
		}
		if status == InquiryCancelled && IsTerminal(exec.Status) {
			return nil // the execution ended some other way; the inquiry goes with it
		}
		return described(ErrConflict, "inquiry %d cannot be %s: its execution %d is %s", id, status, exec.ID, exec.Status)
	})
	if err != nil {
		return Inquiry{}, Execution{}, false, fmt.Errorf("%s inquiry %d: %w", inquiryVerbs[status], id, err)
	}
	return inq, exec, ended, nil
}

var inquiryVerbs = map[string]string{InquiryResponded: "answer", InquiryTimedOut: "time out", InquiryCancelled: "cancel"}

// InquiriesDue returns up to limit pending inquiries past their timeout, oldest first.
func (q *Queries) InquiriesDue(ctx context.Context, limit int) ([]int64, error) {
	return queryAll(ctx, q.db, "due inquiries", scanID, `SELECT id FROM attune.inquiry
		WHERE status = 'pending' AND timeout_at <= now() ORDER BY timeout_at LIMIT $1`, limit)
}

// InquiriesOrphaned returns up to limit pending inquiries whose execution is being cancelled
// or has ended some other way: each is to be cancelled.
func (q *Queries) InquiriesOrphaned(ctx context.Context, limit int) ([]int64, error) {
	return queryAll(ctx, q.db, "orphaned inquiries", scanID, `SELECT i.id FROM attune.inquiry i
		JOIN attune.execution e ON e.id = i.execution
		WHERE i.status = 'pending' AND e.status NOT IN ('running', 'pausing', 'paused')
		ORDER BY i.id LIMIT $1`, limit)
}

// InquiryOfExecution returns the inquiry of execution id.
func (q *Queries) InquiryOfExecution(ctx context.Context, id int64) (Inquiry, error) {
	i, err := scanInquiry(q.db.QueryRow(ctx, `SELECT `+inquiryColumns+` FROM attune.inquiry WHERE execution = $1`, id))
	if err != nil {
		return Inquiry{}, fmt.Errorf("get the inquiry of execution %d: %w", id, translate(err))
	}
	return i, nil
}
