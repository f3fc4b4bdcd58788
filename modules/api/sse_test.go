package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/broker/notify"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store/storetest"
)

const streamWait = 15 * time.Second

// streamServer is the API over real HTTP with its live stream running: the module consumes
// its replica's queue on the in-process broker, and its own changes reach that queue through
// a real notifier, as in a process.
type streamServer struct {
	server
	broker *membroker.Broker
	stop   context.CancelFunc // ends the module's Run, as a stopping process does
	logs   *syncBuffer
}

func newStreamServer(t *testing.T, cfg api.Config) streamServer {
	t.Helper()
	s := storetest.NewStore(t)
	core, err := pack.Core()
	require.NoError(t, err)
	_, err = pack.Register(context.Background(), s, core)
	require.NoError(t, err)

	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	br := membroker.New(broker.Options{})
	t.Cleanup(func() { _ = br.Close() })
	notifier := notify.New(br, notify.Config{})
	e := echo.New()
	e.HTTPErrorHandler = api.ErrorHandler(logger)
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = adminPassword
	}
	m, err := api.New(cfg, api.Deps{Logger: logger, Store: s, Broker: br, Keyring: storetest.Keyring(t), Routes: e.Group("/api/v1"), Auth: e.Group("/auth"), Notifier: notifier})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = notifier.Run(ctx) }()
	go func() { defer wg.Done(); require.NoError(t, m.Run(ctx)) }()
	srv := httptest.NewUnstartedServer(e)
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
	})
	ss := streamServer{server: server{t: t, base: srv.URL + "/api/v1", root: srv.URL, s: s}, broker: br, stop: cancel, logs: logs}
	ss.token = ss.login("admin", cfg.AdminPassword)
	ss.waitBound()
	return ss
}

// smallSendBuffers keeps the kernel from buffering megabytes for a client that does not read,
// so that a test reaches the point where the server's writes block in a few events.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// waitBound waits until the module's queue is bound: Run subscribes in the background, and
// until then the broker drops notifications, as it should.
func (s streamServer) waitBound() {
	s.t.Helper()
	probe := s.open("")
	deadline := time.After(streamWait)
	for {
		s.publish(broker.EventNotification(-1, "probe", time.Now()))
		select {
		case <-probe.events:
			probe.close()
			return
		case <-time.After(20 * time.Millisecond): // polling for a binding nothing announces
		case <-deadline:
			s.t.Fatal("the live stream's queue was never bound")
		}
	}
}

// publish sends notifications as another process would.
func (s streamServer) publish(ns ...broker.Notification) {
	s.t.Helper()
	require.NoError(s.t, broker.Send(context.Background(), s.broker, broker.NotificationCreated{Notifications: ns}))
}

// sseEvent is one event read off a stream.
type sseEvent struct {
	name string
	data map[string]any
}

// sseClient reads a live stream in the background.
type sseClient struct {
	t        *testing.T
	events   chan sseEvent
	comments chan string
	ended    chan struct{} // closed at the end of the body
	cancel   context.CancelFunc
}

func (s streamServer) open(query string) *sseClient {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/stream"+query, nil)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusOK, resp.StatusCode)
	require.Equal(s.t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := &sseClient{t: s.t, events: make(chan sseEvent, 1<<16), comments: make(chan string, 1<<10), ended: make(chan struct{}), cancel: cancel}
	go c.read(resp)
	s.t.Cleanup(c.close)
	return c
}

func (c *sseClient) read(resp *http.Response) {
	defer close(c.ended)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			select {
			case c.comments <- strings.TrimSpace(line[1:]):
			default:
			}
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			var data map[string]any
			if err := json.Unmarshal([]byte(line[len("data: "):]), &data); err != nil {
				c.t.Errorf("data is not JSON: %q", line)
			}
			c.events <- sseEvent{name: name, data: data}
		}
	}
}

func (c *sseClient) close() { c.cancel() }

// next returns the next event, skipping the probes of waitBound.
func (c *sseClient) next() sseEvent {
	c.t.Helper()
	for {
		select {
		case ev := <-c.events:
			if ev.data["trigger_ref"] == "probe" {
				continue
			}
			return ev
		case <-c.ended:
			c.t.Fatal("the stream ended")
		case <-time.After(streamWait):
			c.t.Fatal("no event on the stream")
		}
	}
}

func (c *sseClient) waitEnd() {
	c.t.Helper()
	select {
	case <-c.ended:
	case <-time.After(streamWait):
		c.t.Fatal("the stream did not end")
	}
}

// syncBuffer is a log destination tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// What the API itself commits reaches its streams, each through its filters: an execution
// created and cancelled, and an event; a filter on an action or an execution sees only those.
func TestStreamCarriesChanges(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, api.Config{})
	all := s.open("")
	echoes := s.open("?action_ref=core.echo")

	noop := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "core.noop"}`)
	ev := all.next()
	require.Equal(t, "execution", ev.name)
	require.Equal(t, noop["id"], ev.data["id"])
	require.Equal(t, "core.noop", ev.data["action_ref"])
	require.Equal(t, "scheduled", ev.data["status"], "admitted as it was created")
	require.NotContains(t, ev.data, "previous_status", "a new execution left no status")
	_, err := time.Parse(time.RFC3339Nano, ev.data["at"].(string))
	require.NoError(t, err)

	echo := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "core.echo", "parameters": {"message": "hi"}}`)
	require.Equal(t, echo["id"], all.next().data["id"])
	ev = echoes.next()
	require.Equal(t, echo["id"], ev.data["id"], "the action_ref filter let core.noop through")

	one := s.open(fmt.Sprintf("?execution_id=%v", noop["id"]))
	s.data(http.StatusOK, http.MethodPost, executionPath(echo["id"], "/cancel"), "")
	s.data(http.StatusOK, http.MethodPost, executionPath(noop["id"], "/cancel"), "")
	ev = all.next()
	require.Equal(t, []any{echo["id"], "cancelled"}, []any{ev.data["id"], ev.data["status"]})
	require.Equal(t, echo["id"], echoes.next().data["id"])
	for _, c := range []*sseClient{all, one} {
		ev = c.next()
		require.Equal(t, []any{noop["id"], "cancelled"}, []any{ev.data["id"], ev.data["status"]})
		require.Equal(t, "scheduled", ev.data["previous_status"], "filled in from what the stream passed on before")
	}

	coreRuleOn(t, s.server, "deploys")
	code, body := s.do(http.MethodPost, "/webhooks/deploys", `{"ref": "main"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	ev = all.next()
	require.Equal(t, "event", ev.name)
	require.Equal(t, data(t, body)["event_id"], ev.data["id"])
	require.Equal(t, "core.webhook", ev.data["trigger_ref"])

	// Stale statuses from other processes are dropped, and the filtered streams saw nothing
	// else: the next thing each sees is what comes after.
	noopID := int64(noop["id"].(float64))
	s.publish(broker.ExecutionChanged(noopID, "core.noop", "completed", "", time.Now()))
	s.publish(broker.ExecutionChanged(noopID, "core.noop", "running", "", time.Now()))
	s.publish(broker.ExecutionChanged(1<<40, "core.echo", "requested", "", time.Now()))
	require.Equal(t, float64(1<<40), all.next().data["id"])
	require.Equal(t, float64(1<<40), echoes.next().data["id"])
	s.publish(broker.ExecutionChanged(noopID, "core.noop", "requested", "", time.Now()))
	s.publish(broker.ExecutionChanged(noopID+1<<40, "core.noop", "requested", "", time.Now()))
	require.Equal(t, float64(noopID+1<<40), all.next().data["id"])
}

func data(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	d, ok := body["data"].(map[string]any)
	require.True(t, ok, "no data in %v", body)
	return d
}

// An idle stream says it is alive with a comment at every heartbeat.
func TestStreamHeartbeat(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, api.Config{StreamHeartbeat: 20 * time.Millisecond})
	c := s.open("")
	deadline := time.After(streamWait)
	for {
		select {
		case text := <-c.comments:
			if text == "heartbeat" {
				return
			}
		case <-deadline:
			t.Fatal("no heartbeat")
		}
	}
}

// A stream lasts no longer than the credential that opened it: once its API token is
// revoked, the next heartbeat ends it with an error event.
func TestStreamEndsWithItsCredential(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, api.Config{StreamHeartbeat: 20 * time.Millisecond})
	created := s.data(http.StatusCreated, http.MethodPost, "/tokens", `{"name": "dashboard", "role": "viewer"}`)
	viewer := s
	viewer.token = created["token"].(string)
	c := viewer.open("")
	s.data(http.StatusOK, http.MethodDelete, "/tokens/"+strconv.Itoa(int(created["id"].(float64))), "")
	deadline := time.After(streamWait)
	for {
		select {
		case ev := <-c.events:
			if ev.name != "error" {
				continue
			}
			require.Equal(t, "unauthorized", ev.data["error"].(map[string]any)["code"], ev.data)
			c.waitEnd()
			return
		case <-deadline:
			t.Fatal("the stream outlived its revoked token")
		}
	}
}

func TestStreamRefusesBadFilters(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for _, bad := range []string{"abc", "0", "-3", "1.5"} {
		msg := s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/stream?execution_id="+bad, "")
		require.Contains(t, msg, "execution_id")
	}
	msg := s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/stream?execution_id=1&output=yes", "")
	require.Contains(t, msg, `invalid output "yes"`)
}

// With ?output=true a stream carries what the execution prints as output events, beginning
// with what this replica kept of it for a client that comes late; without, none.
func TestStreamCarriesOutput(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, api.Config{})
	statuses := s.open("?execution_id=42")
	chunk := func(seq int64, text string) broker.Notification {
		return broker.OutputPrinted(42, "core.local", nil, broker.OutputChunk{Seq: seq, Stream: "stderr", Text: text, Dropped: seq - 1}, time.Now())
	}
	s.publish(chunk(1, "first\n"))
	s.publish(chunk(2, "second\n"))
	late := s.open("?execution_id=42&output=true")
	for i, want := range []string{"first\n", "second\n"} {
		ev := late.next()
		require.Equal(t, "output", ev.name)
		require.Equal(t, map[string]any{"execution_id": float64(42), "action_ref": "core.local", "seq": float64(i + 1), "stream": "stderr",
			"text": want, "at": ev.data["at"]}, without(ev.data, "dropped"))
	}
	s.publish(broker.OutputPrinted(42, "core.local", nil, broker.OutputChunk{Seq: 3, Stream: "stdout", End: true}, time.Now()))
	require.Equal(t, true, late.next().data["end"])
	s.publish(broker.ExecutionChanged(42, "core.local", "completed", "", time.Now()))
	require.Equal(t, "execution", late.next().name)
	require.Equal(t, "execution", statuses.next().name, "a stream that did not ask for output has none")
}

func without(m map[string]any, key string) map[string]any {
	delete(m, key)
	return m
}

// A client that stops reading is cut off once it is too far behind, and told so at the end of
// what it was sent; the server does not wait for it, and a client that reads gets everything.
func TestStreamCutsOffSlowClients(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, api.Config{StreamBuffer: 256})
	fast := s.open("")
	// The slow client reads nothing: the server's writes to it block once the connection's
	// buffers are full, and then its place in the hub fills up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.token)
	small := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}}
	resp, err := small.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	// Batches of half the buffer, each read by the fast client before the next goes: it never
	// has more than that waiting, so only the slow one can fall behind. With the connection's
	// buffers kept small, a few hundred events block the server's writes to the slow client;
	// this sends tens of times that.
	var next int64
	send := func(n int) {
		batch := make([]broker.Notification, n)
		for i := range batch {
			next++
			batch[i] = broker.ExecutionChanged(next, "core.noop", "requested", "", time.Now())
		}
		s.publish(batch...)
		for fast.next().data["id"] != float64(next) {
			continue // an earlier one of the batch
		}
	}
	for range 128 {
		send(128)
	}

	// Now the slow client reads: what was buffered, then the reason, then the end.
	body := new(bytes.Buffer)
	read := make(chan error, 1)
	go func() { _, err := body.ReadFrom(resp.Body); read <- err }()
	select {
	case err := <-read:
		require.NoError(t, err)
	case <-time.After(streamWait):
		t.Fatal("the slow client's stream did not end: it was never cut off")
	}
	require.Contains(t, s.logs.String(), "live-stream client cut off")
	events := strings.Split(strings.TrimSpace(body.String()), "\n\n")
	last := events[len(events)-1]
	require.True(t, strings.HasPrefix(last, "event: error\ndata: "), last)
	var reason map[string]map[string]string
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(last, "event: error\ndata: ")), &reason))
	require.Equal(t, "too_slow", reason["error"]["code"])
	require.Less(t, len(events), int(next), "the slow client was not sent everything")
}

// Stopping the module ends the open streams, so a server's graceful shutdown does not wait
// on them; a stream opened after that is refused.
func TestStreamEndsOnStop(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, api.Config{})
	c := s.open("")
	s.stop()
	c.waitEnd()
	s.fail(http.StatusServiceUnavailable, "unavailable", http.MethodGet, "/stream", "")
}
