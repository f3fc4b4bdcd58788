package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// traceBody is a trace as a tree: each event with the rules it matched (the refused among
// them with why), each match with the execution it made, and each execution with its
// workflow's tasks. An execution requested by hand has no event: it heads Executions.
type traceBody struct {
	TraceID    string       `json:"trace_id"`
	Events     []traceEvent `json:"events"`
	Executions []traceExec  `json:"executions"`
	// Truncated says that the trace holds more rows than are shown (store.TraceLimit of each kind).
	Truncated bool `json:"truncated"`
}

type traceEvent struct {
	store.TraceEvent
	Enforcements []traceEnforcement `json:"enforcements"`
}

type traceEnforcement struct {
	store.TraceEnforcement
	// Refused says that the rule matched but its action was not run as asked: the rule could
	// not be evaluated, its parameters could not be rendered, or it was disabled or deleted
	// before its execution was made. Reason says why.
	Refused    bool        `json:"refused"`
	Executions []traceExec `json:"executions"`
}

type traceExec struct {
	store.TraceExecution
	// Children are a workflow's tasks, each with its own.
	Children []traceExec `json:"children,omitempty"`
}

// getTrace answers GET /traces/{id}.
func (m *Module) getTrace(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return badRequest("invalid trace id %q: want a UUID", c.Param("id"))
	}
	t, err := m.deps.Store.TraceGet(c.Request().Context(), id.String())
	if err != nil {
		return err
	}
	return answer(c, http.StatusOK, traceTree(t))
}

// traceTree arranges t's rows as a tree. A retry's attempts sit beside its first attempt;
// a row whose parent is not in the trace (deleted since) heads its own branch.
func traceTree(t store.Trace) traceBody {
	children := make(map[int64][]store.TraceExecution)
	byEnforcement := make(map[int64][]store.TraceExecution)
	known := make(map[int64]store.TraceExecution, len(t.Executions))
	for _, e := range t.Executions {
		known[e.ID] = e
	}
	enforcements := make(map[int64]bool, len(t.Enforcements))
	for _, e := range t.Enforcements {
		enforcements[e.ID] = true
	}
	var roots []store.TraceExecution
	for _, e := range t.Executions {
		// An attempt hangs where its first attempt does.
		anchor := e
		if e.RetryOf != nil {
			if first, ok := known[*e.RetryOf]; ok {
				anchor = first
			}
		}
		switch {
		case anchor.ParentID != nil && known[*anchor.ParentID].ID != 0:
			children[*anchor.ParentID] = append(children[*anchor.ParentID], e)
		case anchor.EnforcementID != nil && enforcements[*anchor.EnforcementID]:
			byEnforcement[*anchor.EnforcementID] = append(byEnforcement[*anchor.EnforcementID], e)
		default:
			roots = append(roots, e)
		}
	}
	var nest func(es []store.TraceExecution, depth int) []traceExec
	nest = func(es []store.TraceExecution, depth int) []traceExec {
		out := make([]traceExec, len(es))
		for i, e := range es {
			out[i] = traceExec{TraceExecution: e, Children: []traceExec{}}
			// Parents come before their children in id order, so no cycle can form; the
			// bound is there all the same.
			if depth < 64 {
				out[i].Children = nest(children[e.ID], depth+1)
			}
		}
		return out
	}
	// An enforcement goes with its event (ON DELETE CASCADE): each found has its event here.
	byEvent := make(map[int64][]traceEnforcement)
	for _, e := range t.Enforcements {
		n := traceEnforcement{TraceEnforcement: e, Refused: e.Reason != nil, Executions: nest(byEnforcement[e.ID], 0)}
		byEvent[e.EventID] = append(byEvent[e.EventID], n)
	}
	body := traceBody{TraceID: t.ID, Events: make([]traceEvent, 0, len(t.Events)), Executions: nest(roots, 0), Truncated: t.Truncated}
	for _, e := range t.Events {
		body.Events = append(body.Events, traceEvent{TraceEvent: e, Enforcements: append([]traceEnforcement{}, byEvent[e.ID]...)})
	}
	return body
}

// maskTrace masks the reasons of a trace, which may quote a seal token as every reason may.
func maskTrace(b traceBody) traceBody {
	var execs func(es []traceExec)
	execs = func(es []traceExec) {
		for i := range es {
			es[i].Reason = maskReason(es[i].Reason)
			execs(es[i].Children)
		}
	}
	for _, ev := range b.Events {
		for i := range ev.Enforcements {
			ev.Enforcements[i].Reason = maskReason(ev.Enforcements[i].Reason)
			execs(ev.Enforcements[i].Executions)
		}
	}
	execs(b.Executions)
	return b
}
