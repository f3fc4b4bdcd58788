package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/notify"
	"github.com/attune-go/attune/modules/worker/runner"
	"github.com/attune-go/attune/store"
)

// heard is a notifier that keeps what it hears, with a backlog and a crowd the test sets.
type heard struct {
	mu      sync.Mutex
	ns      []broker.Notification
	backlog atomic.Int64
	crowded atomic.Bool
	added   chan struct{}
}

func newHeard() *heard { return &heard{added: make(chan struct{}, 1)} }

func (h *heard) Notify(ns ...broker.Notification) {
	h.mu.Lock()
	h.ns = append(h.ns, ns...)
	h.mu.Unlock()
	select {
	case h.added <- struct{}{}:
	default:
	}
}

func (h *heard) PendingBytes() int { return int(h.backlog.Load()) }
func (h *heard) Crowded() bool     { return h.crowded.Load() }

func (h *heard) chunks() []broker.OutputChunk {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []broker.OutputChunk
	for _, n := range h.ns {
		if n.Kind == broker.NotifyOutput {
			out = append(out, *n.Output)
		}
	}
	return out
}

// counted is the worker's metrics, keeping the counts of live output.
type counted struct {
	noMetrics
	dropped atomic.Int64
	cut     atomic.Int64
}

func (c *counted) OutputDropped(n int) { c.dropped.Add(int64(n)) }
func (c *counted) OutputCut()          { c.cut.Add(1) }

func liveModule(t *testing.T, n Notifier, cfg LiveConfig) (*Module, *counted) {
	t.Helper()
	c := &counted{}
	return &Module{cfg: Config{Live: cfg.withDefaults()}, deps: Deps{Logger: slog.New(slog.DiscardHandler), Notifier: n, Metrics: c}}, c
}

// text joins chunks by stream, checking that their numbers follow one another from 1.
func text(t *testing.T, chunks []broker.OutputChunk) (stdout, stderr string) {
	t.Helper()
	var out [2]strings.Builder
	for i, c := range chunks {
		require.Equal(t, int64(i+1), c.Seq, "chunks are numbered in order, with no gap")
		out[map[string]int{"stdout": 0, "stderr": 1}[c.Stream]].WriteString(c.Text)
	}
	return out[0].String(), out[1].String()
}

// Output goes out in the order printed, stdout and stderr interleaved as they were, numbered,
// the last chunk marked End, and split when it grows past a chunk's size.
func TestLiveOutputKeepsOrder(t *testing.T) {
	t.Parallel()
	h := newHeard()
	m, _ := liveModule(t, h, LiveConfig{Chunk: 10, Interval: time.Hour})
	o := m.liveOutput(store.Execution{ID: 7, ActionRef: "core.local"}, nil)
	stdout, stderr := o.writers()
	var order []string
	for i := range 20 {
		line := strings.Repeat(string(rune('a'+i)), i%7+1) + "\n"
		w, name := stdout, "stdout"
		if i%3 == 0 {
			w, name = stderr, "stderr"
		}
		_, _ = w.Write([]byte(line))
		order = append(order, name+":"+line)
	}
	m.closeLiveOutput(t.Context(), o)
	chunks := h.chunks()
	require.Greater(t, len(chunks), 3, "split at the chunk size")
	text(t, chunks)
	var got []string
	for _, c := range chunks {
		for _, line := range strings.SplitAfter(c.Text, "\n") {
			if line != "" {
				got = append(got, c.Stream+":"+line)
			}
		}
	}
	require.Equal(t, order, got)
	require.True(t, chunks[len(chunks)-1].End)
	for _, c := range chunks[:len(chunks)-1] {
		require.False(t, c.End)
	}
}

// What an action prints before it falls silent goes out when the interval has passed, not
// only when the action ends.
func TestLiveOutputSendsAfterTheInterval(t *testing.T) {
	t.Parallel()
	h := newHeard()
	m, _ := liveModule(t, h, LiveConfig{Interval: 20 * time.Millisecond})
	o := m.liveOutput(store.Execution{ID: 7, ActionRef: "core.local"}, nil)
	stdout, _ := o.writers()
	_, _ = stdout.Write([]byte("waiting for you\n"))
	require.Eventually(t, func() bool { return len(h.chunks()) == 1 }, 10*time.Second, time.Millisecond)
	require.Equal(t, broker.OutputChunk{Seq: 1, Stream: "stdout", Text: "waiting for you\n"}, h.chunks()[0])
	m.closeLiveOutput(t.Context(), o)
	require.Equal(t, broker.OutputChunk{Seq: 2, Stream: "stdout", End: true}, h.chunks()[1], "the end is said even with nothing left to send")
}

// While the notifier has more output waiting than the backlog allows, what is printed is
// dropped, counted, and the next chunk says how many bytes were not shown.
func TestLiveOutputDropsWhenBehind(t *testing.T) {
	t.Parallel()
	h := newHeard()
	m, c := liveModule(t, h, LiveConfig{Chunk: 1, Backlog: 100})
	o := m.liveOutput(store.Execution{ID: 7, ActionRef: "core.local"}, nil)
	stdout, _ := o.writers()
	_, _ = stdout.Write([]byte("one\n"))
	h.backlog.Store(101)
	_, _ = stdout.Write([]byte("lost\n"))
	_, _ = stdout.Write([]byte("lost too\n"))
	h.backlog.Store(0)
	_, _ = stdout.Write([]byte("three\n"))
	h.backlog.Store(101)
	_, _ = stdout.Write([]byte("lost at the end\n"))
	m.closeLiveOutput(t.Context(), o)
	require.Equal(t, []broker.OutputChunk{
		{Seq: 1, Stream: "stdout", Text: "one\n"},
		{Seq: 2, Stream: "stdout", Text: "three\n", Dropped: 14},
		{Seq: 3, Stream: "stdout", End: true, Dropped: 16},
	}, h.chunks())
	require.Equal(t, int64(30), c.dropped.Load())
}

// While the notifier is crowded (many notifications wait, however little output they carry),
// what is printed is dropped too: live output never pushes status changes out of its bound.
func TestLiveOutputDropsWhenCrowded(t *testing.T) {
	t.Parallel()
	h := newHeard()
	m, c := liveModule(t, h, LiveConfig{Chunk: 1})
	o := m.liveOutput(store.Execution{ID: 7, ActionRef: "core.local"}, nil)
	stdout, _ := o.writers()
	h.crowded.Store(true)
	_, _ = stdout.Write([]byte("lost\n"))
	h.crowded.Store(false)
	_, _ = stdout.Write([]byte("shown\n"))
	m.closeLiveOutput(t.Context(), o)
	require.Equal(t, []broker.OutputChunk{
		{Seq: 1, Stream: "stdout", Text: "shown\n", Dropped: 5},
		{Seq: 2, Stream: "stdout", End: true},
	}, h.chunks())
	require.Equal(t, int64(5), c.dropped.Load())
}

// Past its bound, an execution's live output ends with one marker, counted once.
func TestLiveOutputCutAtItsBound(t *testing.T) {
	t.Parallel()
	h := newHeard()
	m, c := liveModule(t, h, LiveConfig{Chunk: 8, Limit: 20})
	o := m.liveOutput(store.Execution{ID: 7, ActionRef: "core.local"}, nil)
	stdout, _ := o.writers()
	for range 10 {
		_, _ = stdout.Write([]byte("0123456\n"))
	}
	m.closeLiveOutput(t.Context(), o)
	chunks := h.chunks()
	out, _ := text(t, chunks)
	require.Equal(t, "0123456\n0123456\n0123", out)
	last := chunks[len(chunks)-1]
	require.True(t, last.Cut)
	require.False(t, last.End)
	require.Equal(t, int64(1), c.cut.Load())
}

// A secret value is masked in live output however the action's writes split it, and what is
// shown live is exactly what the stored output shows.
func TestLiveOutputScrubsAcrossWrites(t *testing.T) {
	t.Parallel()
	params := json.RawMessage(`{"a": "secret-value", "b": "secret-value-longer", "c": "lue-sec", "d": "clé-privée"}`)
	s := newScrubber(params, []string{"a", "b", "c", "d"})
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"secret-value", "secret-value-longer", "lue-sec", "clé-privée", "secret-", "é", "x", " ", "\n", "secret-valu"}
	for range 500 {
		var whole strings.Builder
		for range rng.IntN(30) {
			whole.WriteString(pieces[rng.IntN(len(pieces))])
		}
		printed := []byte(whole.String())
		z := streamScrub{s: s}
		var shown []byte
		for len(printed) > 0 {
			k := min(rng.IntN(8), len(printed))
			shown = z.write(shown, printed[:k], false)
			printed = printed[k:]
		}
		shown = z.write(shown, nil, true)
		require.Equal(t, s.result(runner.Result{Stdout: whole.String()}).Stdout, string(shown))
		for _, v := range s.values {
			require.NotContains(t, string(shown), v)
		}
	}
}

// A UTF-8 character split between writes goes out whole.
func TestLiveOutputKeepsCharactersWhole(t *testing.T) {
	t.Parallel()
	z := streamScrub{}
	shown := z.write(nil, []byte("caf\xc3"), false)
	require.Equal(t, "caf", string(shown))
	shown = z.write(nil, []byte("\xa9!"), false)
	require.Equal(t, "é!", string(shown))
}

// Through a real notifier whose broker holds every publish: an action printing far more than
// the backlog runs to its end at once, what waits stays bounded, and the end says how much
// was not shown.
func TestLiveOutputNeverHoldsTheAction(t *testing.T) {
	t.Parallel()
	held := &heldBroker{release: make(chan struct{})}
	t.Cleanup(func() { close(held.release) })
	n := notify.New(held, notify.Config{})
	go func() { _ = n.Run(t.Context()) }()
	m, c := liveModule(t, n, LiveConfig{Chunk: 4 << 10, Backlog: 64 << 10, Limit: 64 << 20})
	o := m.liveOutput(store.Execution{ID: 7, ActionRef: "core.local"}, nil)
	job := runner.Job{ExecutionID: 7, RunnerType: runner.TypeShell, Command: "head -c 20000000 /dev/zero | tr '\\0' x; echo", Timeout: time.Minute,
		WorkDir: t.TempDir()}
	job.Stdout, job.Stderr = o.writers()
	start := time.Now()
	res := runner.New(runner.Config{})[runner.TypeShell].Run(t.Context(), job)
	m.closeLiveOutput(t.Context(), o)
	require.True(t, res.Succeeded, res.Error)
	require.Less(t, time.Since(start), 30*time.Second)
	require.LessOrEqual(t, n.PendingBytes(), 64<<10+2*(4<<10)+32<<10, "what waits stays near the backlog")
	require.Greater(t, c.dropped.Load(), int64(19000000))
}

// heldBroker holds every publish until released.
type heldBroker struct{ release chan struct{} }

func (b *heldBroker) Publish(ctx context.Context, _ ...broker.Message) error {
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return ctx.Err()
}

// What live output costs an action per byte printed, with three secret values to scrub.
func BenchmarkLiveOutputWrite(b *testing.B) {
	s := newScrubber(json.RawMessage(`{"a": "secret-value", "b": "another-secret", "c": "tok-123456"}`), []string{"a", "b", "c"})
	m := &Module{cfg: Config{Live: LiveConfig{}.withDefaults()}, deps: Deps{Logger: slog.New(slog.DiscardHandler), Notifier: newHeard(),
		Metrics: noMetrics{}}}
	line := []byte(strings.Repeat("a line of ordinary output, with some text in it: 0123456789\n", 64))
	b.SetBytes(int64(len(line)))
	for range b.N {
		o := m.liveOutput(store.Execution{ID: 7, ActionRef: "core.local"}, s)
		stdout, _ := o.writers()
		_, _ = stdout.Write(line)
		m.closeLiveOutput(context.Background(), o)
	}
}
