package worker

import (
	"cmp"
	"context"
	"io"
	"sync"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/worker/runner"
	"github.com/attune-go/attune/store"
)

// LiveConfig tunes the live output of running shell actions: what they print goes to the
// api replicas' live streams in chunks, scrubbed of their secrets, as it is printed.
type LiveConfig struct {
	// Interval is how long what an action prints may wait to go out with what it prints next.
	// Default 200ms.
	Interval time.Duration
	// Chunk is how much waiting output goes out at once, without waiting out Interval.
	// Default 16 KiB.
	Chunk int
	// Limit bounds what of one execution's output is sent live; past it one marker says the
	// rest was cut (the stored output keeps its end). Default 1 MiB.
	Limit int
	// Backlog bounds the output that waits in this process to be published: while more waits,
	// what actions print is dropped from the live stream, and the next chunk says how many
	// bytes, rather than piled up. Default 8 MiB.
	Backlog int
}

func (c LiveConfig) withDefaults() LiveConfig {
	c.Interval = cmp.Or(c.Interval, 200*time.Millisecond)
	c.Chunk = cmp.Or(c.Chunk, 16<<10)
	c.Limit = cmp.Or(c.Limit, 1<<20)
	c.Backlog = cmp.Or(c.Backlog, 8<<20)
	return c
}

// The streams of an action's output, as chunks name them.
var streamNames = [2]string{"stdout", "stderr"}

// liveOutput sends what one execution prints to the live stream. Its writers never wait: they
// scrub, append, and at most hand a chunk to the notifier, which never blocks either. A timer,
// armed while output waits, sends what an action printed before it fell silent.
type liveOutput struct {
	cfg      LiveConfig
	notifier Notifier
	metrics  Metrics
	exec     store.Execution

	mu      sync.Mutex
	scrub   [2]streamScrub
	pending []segment // in the order printed
	waiting int       // bytes in pending
	timer   *time.Timer
	armed   bool
	seq     int64
	sent    int   // bytes sent live
	dropped int64 // bytes dropped since the last chunk sent
	lost    int64 // bytes dropped in all
	cut     bool
	ended   bool
}

// segment is a run of output of one stream.
type segment struct {
	stream int
	text   []byte
}

// liveOutput returns the live output of exec, scrubbed by scrub, or nil when nothing hears it.
func (m *Module) liveOutput(exec store.Execution, scrub *scrubber) *liveOutput {
	if m.deps.Notifier == nil {
		return nil
	}
	return &liveOutput{cfg: m.cfg.Live, notifier: m.deps.Notifier, metrics: m.deps.Metrics, exec: exec,
		scrub: [2]streamScrub{{s: scrub}, {s: scrub}}}
}

// writers are the writers of the action's stdout and stderr; nil writers for a nil o.
func (o *liveOutput) writers() (stdout, stderr io.Writer) {
	if o == nil {
		return nil, nil
	}
	return liveWriter{o, 0}, liveWriter{o, 1}
}

type liveWriter struct {
	o      *liveOutput
	stream int
}

// Write never fails and never waits on anything slow: the action waits on it.
func (w liveWriter) Write(p []byte) (int, error) {
	w.o.write(w.stream, p)
	return len(p), nil
}

func (o *liveOutput) write(stream int, p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cut || o.ended {
		return
	}
	o.add(stream, p, false)
	switch {
	case o.waiting >= o.cfg.Chunk:
		o.flush(false)
	case o.waiting > 0 && !o.armed:
		o.armed = true
		if o.timer == nil {
			o.timer = time.AfterFunc(o.cfg.Interval, o.tick)
		} else {
			o.timer.Reset(o.cfg.Interval)
		}
	}
}

// add scrubs p, the next bytes of stream, into what waits. o.mu must be held.
func (o *liveOutput) add(stream int, p []byte, end bool) {
	n := len(o.pending)
	if n == 0 || o.pending[n-1].stream != stream {
		o.pending = append(o.pending, segment{stream: stream})
		n++
	}
	seg := &o.pending[n-1]
	before := len(seg.text)
	seg.text = o.scrub[stream].write(seg.text, p, end)
	o.waiting += len(seg.text) - before
	if len(seg.text) == 0 {
		o.pending = o.pending[:n-1]
	}
}

func (o *liveOutput) tick() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.armed = false
	if !o.cut && !o.ended {
		o.flush(false)
	}
}

// flush hands what waits to the notifier as chunks, the last marked End when end is set, or
// drops it, counted, when the notifier has more output waiting than the backlog allows, or is
// crowded.
// o.mu must be held.
func (o *liveOutput) flush(end bool) {
	now := time.Now().UTC()
	behind := o.notifier.PendingBytes() > o.cfg.Backlog || o.notifier.Crowded()
	var ns []broker.Notification
	chunk := func(c broker.OutputChunk) {
		o.seq++
		c.Seq, c.Dropped = o.seq, o.dropped
		o.dropped = 0
		ns = append(ns, broker.OutputPrinted(o.exec.ID, o.exec.ActionRef, o.exec.WorkflowID(), c, now))
	}
	for _, seg := range o.pending {
		text := seg.text
		if room := o.cfg.Limit - o.sent; len(text) > room {
			text, o.cut = text[:runner.CompleteRunes(text[:room])], true
		}
		switch {
		case len(text) == 0:
		case behind:
			o.dropped += int64(len(text))
			o.lost += int64(len(text))
			o.metrics.OutputDropped(len(text))
		default:
			chunk(broker.OutputChunk{Stream: streamNames[seg.stream], Text: string(text)})
			o.sent += len(text)
		}
		if o.cut {
			chunk(broker.OutputChunk{Stream: streamNames[seg.stream], Cut: true})
			o.metrics.OutputCut()
			break
		}
	}
	o.pending, o.waiting = o.pending[:0], 0
	if end && !o.cut && (o.seq > 0 || o.dropped > 0) {
		if len(ns) > 0 && o.dropped == 0 {
			ns[len(ns)-1].Output.End = true
		} else {
			chunk(broker.OutputChunk{Stream: streamNames[0], End: true})
		}
	}
	if len(ns) > 0 {
		o.notifier.Notify(ns...)
	}
}

// close sends what is left of the output, what was held back included, once the action's
// output has ended: before its ending is recorded, so that the live stream, which hears both
// through the one notifier, has the output before the status that ends it.
func (m *Module) closeLiveOutput(ctx context.Context, o *liveOutput) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = true
	if o.timer != nil {
		o.timer.Stop()
	}
	if !o.cut {
		for stream := range o.scrub {
			o.add(stream, nil, true)
		}
		o.flush(true)
	}
	if o.lost > 0 {
		m.deps.Logger.WarnContext(ctx, "live output dropped: publishing fell behind", "execution_id", o.exec.ID, "dropped_bytes", o.lost)
	}
	if o.cut {
		m.deps.Logger.InfoContext(ctx, "live output cut at its bound", "execution_id", o.exec.ID, "limit_bytes", o.cfg.Limit)
	}
}
