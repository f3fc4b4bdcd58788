package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/attune-go/attune/store"
)

const (
	// followReread is how often a follower reads the execution again whatever the stream
	// says: notifications are best effort, and one lost must not leave it waiting for ever.
	followReread = 3 * time.Second
	// streamIdle is how long a live stream may stay silent, heartbeats included, before it is
	// taken for dead and opened again; the server sends one every 15 s.
	streamIdle = 45 * time.Second
	// streamRetryMax bounds the wait between attempts to open the stream.
	streamRetryMax = 10 * time.Second
)

// followedExecution is what a follower reads of an execution.
type followedExecution struct {
	ID        int64           `json:"id"`
	ActionRef string          `json:"action_ref"`
	Status    string          `json:"status"`
	Reason    *string         `json:"reason"`
	Result    json.RawMessage `json:"result"`
	Updated   time.Time       `json:"updated"`
	// Workflow is set for a workflow that has started.
	Workflow json.RawMessage `json:"workflow"`
}

// follow watches execution id until it ends and returns it as the API answered, raw and
// decoded. onStatus, when set, hears each status it reaches, the current one first and never
// a lower one after a higher; a status the stream missed may be skipped.
//
// The stream is opened first and the execution read once after that, so that nothing
// committed in between goes unseen; it may have ended already. Because the stream is best
// effort, the execution is read again every few seconds, and whenever the stream was opened
// again after a drop.
func follow(ctx context.Context, client *apiClient, id int64, onStatus func(status string, at time.Time)) (json.RawMessage, followedExecution, error) {
	return followWith(ctx, client, id, followHooks{status: onStatus})
}

// followHooks are what a follower tells as it follows; each may be nil.
type followHooks struct {
	// status hears each status the execution reaches (see follow).
	status func(status string, at time.Time)
	// task hears each change of the executions of a workflow's tasks the stream carries, as
	// it carries them.
	task func(change executionChange)
	// output hears each chunk of what the execution (or a workflow's task) prints; setting it
	// asks the stream for output.
	output func(chunk outputChunk)
	// outputEnded reports whether the execution's output has ended. Once the execution has,
	// the follower waits a moment for that: the stream sends the output's last chunk before
	// the status that ends it, but a read may see the ending first.
	outputEnded func() bool
}

// outputSettle bounds how long a follower waits for the end of the output of an execution
// that has ended.
const outputSettle = 2 * time.Second

// followWith is follow that also tells hooks what it sees.
func followWith(ctx context.Context, client *apiClient, id int64, hooks followHooks) (json.RawMessage, followedExecution, error) {
	onStatus, onTask := hooks.status, hooks.task
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notices := make(chan streamNotice, 64)
	// Each attempt to open the stream takes the client's token as it is then, so that a
	// stream dropped after a reread renewed the token opens again with the new one.
	go client.watchExecution(ctx, id, hooks.output != nil, notices)

	var last string
	var lastAt time.Time
	// advance reports n's status when it is news, and whether the execution has ended.
	advance := func(status string, at time.Time) bool {
		if last == "" || store.ExecutionStatusNewer(last, lastAt, status, at) {
			last, lastAt = status, at
			if onStatus != nil {
				onStatus(status, at)
			}
		}
		return store.IsTerminal(last)
	}
	read := func() (json.RawMessage, followedExecution, error) {
		var exec followedExecution
		data, err := client.get(ctx, "/api/v1/executions/"+strconv.FormatInt(id, 10))
		if err != nil {
			return nil, exec, err
		}
		if err := json.Unmarshal(data, &exec); err != nil {
			return nil, exec, fmt.Errorf("decode execution %d: %w", id, err)
		}
		return data, exec, nil
	}

	// The first attempt to open the stream settles, one way or the other, before the read.
	select {
	case <-notices:
	case <-ctx.Done():
		return nil, followedExecution{}, ctx.Err()
	}
	data, exec, err := read()
	if err != nil {
		return nil, exec, err
	}
	if advance(exec.Status, exec.Updated) {
		settleOutput(ctx, notices, hooks)
		return data, exec, nil
	}
	tick := time.NewTicker(followReread)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, exec, ctx.Err()
		case n := <-notices:
			if n.output != nil {
				if hooks.output != nil {
					hooks.output(*n.output)
				}
				continue
			}
			if n.task != nil {
				if onTask != nil {
					onTask(*n.task)
				}
				continue
			}
			// A status change says read now, for the result it ended with; a stream opened
			// again says read now, for what it missed while it was down.
			if !n.opened && (n.status == "" || !advance(n.status, n.at)) {
				continue
			}
		case <-tick.C:
		}
		d, e, err := read()
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Status < http.StatusInternalServerError:
			// Gone, or no longer ours to read (a revoked token, a login that could not be
			// renewed): asking again every few seconds would not change the answer.
			return nil, exec, err
		case err != nil:
			continue // the API is away for a moment: the next read or notice tries again
		}
		data, exec = d, e
		if advance(exec.Status, exec.Updated) {
			settleOutput(ctx, notices, hooks)
			return data, exec, nil
		}
	}
}

// settleOutput passes on the output the stream still carries, once the execution has ended,
// until its output has ended too, or for at most outputSettle.
func settleOutput(ctx context.Context, notices <-chan streamNotice, hooks followHooks) {
	if hooks.output == nil || hooks.outputEnded == nil {
		return
	}
	deadline := time.NewTimer(outputSettle)
	defer deadline.Stop()
	for !hooks.outputEnded() {
		select {
		case n := <-notices:
			if n.output != nil {
				hooks.output(*n.output)
			}
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// streamNotice is what watchExecution reports: a stream opened, a status change, a change of
// a task's execution, or (none) an attempt that failed or a stream that ended.
type streamNotice struct {
	opened bool
	status string
	at     time.Time
	task   *executionChange
	output *outputChunk
}

// outputChunk is a chunk of what an execution printed, as the live stream tells it.
type outputChunk struct {
	ExecutionID int64  `json:"execution_id"`
	Seq         int64  `json:"seq"`
	Stream      string `json:"stream"`
	Text        string `json:"text"`
	Dropped     int64  `json:"dropped"`
	Cut         bool   `json:"cut"`
	End         bool   `json:"end"`
}

// executionChange is an execution's change as the live stream tells it.
type executionChange struct {
	ID        int64     `json:"id"`
	ActionRef string    `json:"action_ref"`
	Status    string    `json:"status"`
	At        time.Time `json:"at"`
	Workflow  *int64    `json:"workflow"`
}

// watchExecution keeps a live stream of execution id open until ctx ends, opening it again
// with backoff whenever it drops, and reports on notices; with output, what it prints too.
func (c *apiClient) watchExecution(ctx context.Context, id int64, output bool, notices chan<- streamNotice) {
	delay := 500 * time.Millisecond
	for {
		opened := c.streamExecution(ctx, c.currentToken(), id, output, notices)
		if !send(ctx, notices, streamNotice{}) {
			return
		}
		if opened {
			delay = 500 * time.Millisecond
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(delay*2, streamRetryMax)
	}
}

func send(ctx context.Context, ch chan<- streamNotice, n streamNotice) bool {
	select {
	case ch <- n:
		return true
	case <-ctx.Done():
		return false
	}
}

// streamExecution reads one live stream of execution id until it ends, and reports whether it
// opened at all.
func (c *apiClient) streamExecution(ctx context.Context, token string, id int64, output bool, notices chan<- streamNotice) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	target := c.baseURL.JoinPath("/api/v1/stream")
	target.RawQuery = "execution_id=" + strconv.FormatInt(id, 10)
	if output {
		target.RawQuery += "&output=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return false
	}
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// No overall timeout, unlike the other calls: the stream is meant to stay open. Silence
	// is bounded below instead.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return false // an older server without the stream, or one stopping: the rereads carry on
	}
	if !send(ctx, notices, streamNotice{opened: true}) {
		return true
	}
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()
	sc := bufio.NewScanner(resp.Body)
	var event string
	for sc.Scan() {
		idle.Reset(streamIdle)
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:") && event == "execution":
			var change executionChange
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data:")), &change) != nil {
				continue
			}
			n := streamNotice{status: change.Status, at: change.At}
			switch {
			case change.Workflow != nil && *change.Workflow == id:
				n = streamNotice{task: &change}
			case change.ID != id:
				continue
			}
			if !send(ctx, notices, n) {
				return true
			}
		case strings.HasPrefix(line, "data:") && event == "output":
			var chunk outputChunk
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data:")), &chunk) != nil {
				continue
			}
			if !send(ctx, notices, streamNotice{output: &chunk}) {
				return true
			}
		case line == "":
			event = ""
		}
	}
	// The end of the body, a too_slow cut-off, a dead connection: the caller opens it again.
	return true
}

// outcome is what printOutcome reads of an execution's result.
type outcome struct {
	Stdout string          `json:"stdout"`
	Stderr string          `json:"stderr"`
	Error  string          `json:"error"`
	Data   json.RawMessage `json:"data"`
}

// printOutcome writes what an ended execution left: its output on out and err (a workflow's
// output as JSON), and the reason it did not complete.
func printOutcome(out, errw io.Writer, exec followedExecution) {
	if len(exec.Workflow) > 0 {
		printWorkflowOutcome(out, errw, exec)
		return
	}
	var result outcome
	_ = json.Unmarshal(exec.Result, &result) // a result of another shape prints nothing here
	switch {
	case result.Stdout != "":
		fmt.Fprint(out, withNewline(result.Stdout))
	case len(result.Data) > 0:
		fmt.Fprintln(out, string(result.Data))
	}
	if result.Stderr != "" {
		fmt.Fprint(errw, withNewline(result.Stderr))
	}
	printReason(errw, exec, result.Error)
}

// printReason writes why exec did not complete, when it did not: its reason, else the error
// its result holds.
func printReason(errw io.Writer, exec followedExecution, resultError string) {
	if exec.Status == store.ExecutionCompleted {
		return
	}
	switch {
	case exec.Reason != nil && *exec.Reason != "":
		fmt.Fprintf(errw, "execution %d %s: %s\n", exec.ID, exec.Status, *exec.Reason)
	case resultError != "":
		fmt.Fprintf(errw, "execution %d %s: %s\n", exec.ID, exec.Status, resultError)
	default:
		fmt.Fprintf(errw, "execution %d %s\n", exec.ID, exec.Status)
	}
}

func withNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
