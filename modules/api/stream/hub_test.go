package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/api/stream"
)

func exec(id int64, action, status string) broker.Notification {
	return broker.ExecutionChanged(id, action, status, "", time.Now())
}

// received drains what c has waiting, without waiting for more: Deliver hands notifications
// over before it returns.
func received(c *stream.Client) []broker.Notification {
	var out []broker.Notification
	for {
		select {
		case n := <-c.Notifications():
			out = append(out, n)
		default:
			return out
		}
	}
}

func statuses(ns []broker.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Ref+"#"+n.Status)
	}
	return out
}

func subscribe(t *testing.T, h *stream.Hub, f stream.Filter) *stream.Client {
	t.Helper()
	c, err := h.Subscribe(f)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// Each client gets what its filter matches: everything, one execution, or one action's
// executions; a filter on executions leaves events out.
func TestFansOutWithFilters(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{})
	all := subscribe(t, h, stream.Filter{})
	one := subscribe(t, h, stream.Filter{ExecutionID: 2})
	byAction := subscribe(t, h, stream.Filter{ActionRef: "core.echo"})
	both := subscribe(t, h, stream.Filter{ExecutionID: 1, ActionRef: "core.echo"})

	h.Deliver([]broker.Notification{
		exec(1, "core.noop", "requested"),
		exec(2, "core.echo", "requested"),
		broker.EventNotification(9, "core.webhook", time.Now()),
		exec(3, "core.echo", "scheduled"),
	})
	require.Equal(t, []string{"core.noop#requested", "core.echo#requested", "core.webhook#", "core.echo#scheduled"}, statuses(received(all)))
	require.Equal(t, []string{"core.echo#requested"}, statuses(received(one)))
	require.Equal(t, []string{"core.echo#requested", "core.echo#scheduled"}, statuses(received(byAction)))
	require.Empty(t, received(both), "execution 1 is not of core.echo")
}

// Batches from different processes arrive in any order: a status at or below the last one
// passed on for its execution is dropped, so no client sees an execution move backwards,
// nor the same status twice. A previous status the sender left out is the last one passed on.
func TestNeverMovesBackwards(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{})
	c := subscribe(t, h, stream.Filter{})
	h.Deliver([]broker.Notification{exec(1, "a", "requested"), exec(1, "a", "running")})
	h.Deliver([]broker.Notification{exec(1, "a", "scheduled"), exec(2, "b", "scheduled")}) // late: the executor's batch
	h.Deliver([]broker.Notification{exec(1, "a", "running"), exec(2, "b", "requested")})   // a duplicate, and a late one
	h.Deliver([]broker.Notification{exec(1, "a", "completed"), exec(1, "a", "canceling")})
	h.Deliver([]broker.Notification{exec(1, "a", "failed")}) // terminal is final, whatever comes after

	got := received(c)
	require.Equal(t, []string{"a#requested", "a#running", "b#scheduled", "a#completed"}, statuses(got))
	require.Equal(t, "", got[0].PreviousStatus)
	require.Equal(t, "requested", got[1].PreviousStatus)
	require.Equal(t, "running", got[3].PreviousStatus)

	// A sender that knows the previous status keeps its word.
	n := exec(3, "a", "running")
	n.PreviousStatus = "scheduled"
	h.Deliver([]broker.Notification{exec(3, "a", "requested"), n})
	require.Equal(t, "scheduled", received(c)[1].PreviousStatus)
}

// A late result replaces abandoned, as it does in the database; the reverse order stays
// stale, and a second late result does not follow the first.
func TestLateResultFollowsAbandoned(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{})
	c := subscribe(t, h, stream.Filter{})
	h.Deliver([]broker.Notification{exec(1, "a", "running"), exec(1, "a", "abandoned"), exec(1, "a", "completed"), exec(1, "a", "failed")})
	h.Deliver([]broker.Notification{exec(2, "b", "completed"), exec(2, "b", "abandoned")})
	require.Equal(t, []string{"a#running", "a#abandoned", "a#completed", "b#completed"}, statuses(received(c)))
}

// A filter on a workflow's id keeps its tasks' executions too, which carry its id; not those
// of another workflow, nor of a nested workflow's tasks, which carry the nested one's.
func TestWorkflowFilterKeepsItsTasks(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{})
	c := subscribe(t, h, stream.Filter{ExecutionID: 1})
	inWorkflow := func(id, workflow int64, status string) broker.Notification {
		return exec(id, "task", status).InWorkflow(&workflow)
	}
	h.Deliver([]broker.Notification{exec(1, "flow", "running"), inWorkflow(2, 1, "requested"), inWorkflow(3, 9, "requested"),
		inWorkflow(4, 2, "requested"), inWorkflow(2, 1, "running"), exec(5, "task", "running")})
	got := received(c)
	require.Equal(t, []string{"flow#running", "task#requested", "task#running"}, statuses(got))
	require.EqualValues(t, 1, *got[1].Workflow)
}

// A workflow moves between running, pausing and paused, which share a rank: a later change
// among them is passed on, an earlier one arriving late is stale, and the rank still rules
// between them and the others.
func TestWorkflowPausesInTimeOrder(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{})
	c := subscribe(t, h, stream.Filter{})
	at := time.Now()
	change := func(status string, after time.Duration) broker.Notification {
		return broker.ExecutionChanged(1, "flow", status, "", at.Add(after))
	}
	h.Deliver([]broker.Notification{change("running", 0), change("pausing", time.Second)})
	h.Deliver([]broker.Notification{change("running", 0)}) // late: the start, again
	h.Deliver([]broker.Notification{change("paused", 2*time.Second), change("running", 3*time.Second)})
	h.Deliver([]broker.Notification{change("pausing", time.Second)}) // late
	h.Deliver([]broker.Notification{change("scheduled", 4*time.Second), change("canceling", 5*time.Second), change("paused", 6*time.Second)})
	got := received(c)
	require.Equal(t, []string{"flow#running", "flow#pausing", "flow#paused", "flow#running", "flow#canceling"}, statuses(got))
	require.Equal(t, "paused", got[3].PreviousStatus)
}

// The memory of last statuses is bounded: after Remember other executions changed, an
// execution is forgotten, and only then.
func TestForgetsOnlyLongAfter(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{Remember: 2})
	c := subscribe(t, h, stream.Filter{ExecutionID: 1})
	h.Deliver([]broker.Notification{exec(1, "a", "running")})
	h.Deliver([]broker.Notification{exec(2, "a", "running"), exec(3, "a", "running")})
	h.Deliver([]broker.Notification{exec(1, "a", "scheduled")})
	require.Equal(t, []string{"a#running"}, statuses(received(c)), "remembered across one generation")
	h.Deliver([]broker.Notification{exec(4, "a", "running"), exec(5, "a", "running"), exec(6, "a", "running")})
	h.Deliver([]broker.Notification{exec(1, "a", "scheduled")})
	require.Equal(t, []string{"a#scheduled"}, statuses(received(c)), "forgotten after two")
}

// A client that does not read is cut off once its buffer is full, with ErrTooSlow; the hub
// does not wait for it, and the other clients get everything.
func TestCutsOffSlowClients(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{Buffer: 4})
	slow := subscribe(t, h, stream.Filter{})
	fast := subscribe(t, h, stream.Filter{})
	var got []broker.Notification
	for id := int64(1); id <= 10; id++ {
		h.Deliver([]broker.Notification{exec(id, "a", "requested")})
		got = append(got, received(fast)...)
	}
	require.Len(t, got, 10)
	select {
	case <-slow.Done():
	default:
		t.Fatal("the slow client is still subscribed")
	}
	require.ErrorIs(t, slow.Err(), stream.ErrTooSlow)
	require.Len(t, received(slow), 4, "what was buffered before the cut stays readable")
	select {
	case <-fast.Done():
		t.Fatal("the fast client was cut off")
	default:
	}
}

// Closing the hub ends every client with ErrClosed and refuses new ones; a client's own Close
// ends it with no error.
func TestCloseEndsClients(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{})
	left := subscribe(t, h, stream.Filter{})
	left.Close()
	require.NoError(t, left.Err())
	c := subscribe(t, h, stream.Filter{})
	h.Close()
	require.ErrorIs(t, c.Err(), stream.ErrClosed)
	_, err := h.Subscribe(stream.Filter{})
	require.ErrorIs(t, err, stream.ErrClosed)
	h.Deliver([]broker.Notification{exec(1, "a", "requested")}) // harmless
}

func printed(id int64, seq int64, text string) broker.Notification {
	return broker.OutputPrinted(id, "core.local", nil, broker.OutputChunk{Seq: seq, Stream: "stdout", Text: text}, time.Now())
}

func texts(ns []broker.Notification) []string {
	var out []string
	for _, n := range ns {
		if n.Output != nil {
			out = append(out, n.Output.Text)
		}
	}
	return out
}

// Output reaches only the clients that asked for it, of the executions they follow.
func TestOutputOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{})
	all := subscribe(t, h, stream.Filter{})
	statusOnly := subscribe(t, h, stream.Filter{ExecutionID: 1})
	output := subscribe(t, h, stream.Filter{ExecutionID: 1, Output: true})
	other := subscribe(t, h, stream.Filter{ExecutionID: 2, Output: true})
	h.Deliver([]broker.Notification{exec(1, "core.local", "running"), printed(1, 1, "hello\n")})
	require.Equal(t, []string{"core.local#running"}, statuses(received(all)))
	require.Equal(t, []string{"core.local#running"}, statuses(received(statusOnly)))
	require.Equal(t, []string{"hello\n"}, texts(received(output)))
	require.Empty(t, received(other))
}

// A client that starts following an execution late gets its latest output first, within the
// bounds; what is kept is forgotten when the execution's last chunk comes or it ends, and the
// least lately printed is forgotten first when too many executions are kept.
func TestKeepsRecentOutputForLateClients(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(stream.Config{RecentChunks: 3, RecentBytes: 100, RecentExecutions: 2})
	late := func(id int64) []string {
		return texts(received(subscribe(t, h, stream.Filter{ExecutionID: id, Output: true})))
	}
	h.Deliver([]broker.Notification{printed(1, 1, "a"), printed(1, 2, "b"), printed(1, 3, "c"), printed(1, 4, "d")})
	c := subscribe(t, h, stream.Filter{ExecutionID: 1, Output: true})
	require.Equal(t, []string{"b", "c", "d"}, texts(received(c)), "the latest three, in order")
	h.Deliver([]broker.Notification{printed(1, 5, "e")})
	require.Equal(t, []string{"e"}, texts(received(c)), "then what follows, once")

	h.Deliver([]broker.Notification{exec(1, "core.local", "completed")})
	require.Empty(t, late(1), "forgotten when it ended")

	for _, last := range []broker.OutputChunk{{Seq: 2, End: true}, {Seq: 2, Cut: true}} {
		h.Deliver([]broker.Notification{printed(5, 1, "kept"), broker.OutputPrinted(5, "core.local", nil, last, time.Now())})
		require.Empty(t, late(5), "forgotten with its last chunk, before its status comes: %+v", last)
	}

	h.Deliver([]broker.Notification{printed(2, 1, "0123"), printed(3, 1, "0123"), printed(2, 2, "45"), printed(4, 1, "0123")})
	require.Empty(t, late(3), "past the bound, the least lately printed goes, not the first to print")
	require.Equal(t, []string{"0123", "45"}, late(2))
	require.Equal(t, []string{"0123"}, late(4))
}
