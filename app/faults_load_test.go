package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// webhookLoad posts webhooks at a steady rate, whatever happens to the answers (an open
// loop: a slow answer does not slow the load), to the api processes that are up in turn, and
// records each request's answer and how long it took.
type webhookLoad struct {
	c      *cluster
	perSec int
	// queuedEvery sends every nth webhook to faults-queued, whose action a policy holds.
	queuedEvery int
	client      *http.Client

	stop    chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	results []webhookResult
}

// webhookResult is one request of the load.
type webhookResult struct {
	seq     int64
	url     string
	api     *member
	sent    time.Time
	latency time.Duration
	// status is the HTTP status; 0 when no answer came (err says why).
	status  int
	err     error
	eventID int64
	seconds float64
	exit    int
}

// loadClientTimeout is how long the load waits for an answer: far past requestBound, so that
// a request that hangs is measured rather than cut off at the bound.
const loadClientTimeout = 30 * time.Second

func newWebhookLoad(c *cluster, perSec, queuedEvery int) *webhookLoad {
	return &webhookLoad{
		c: c, perSec: perSec, queuedEvery: queuedEvery, stop: make(chan struct{}),
		client: &http.Client{Timeout: loadClientTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
}

// start sends until stopLoad. Request n is due n/perSec after the start: when the machine
// is too busy to send one on time, the next ones go at once, so that the rate holds.
func (l *webhookLoad) start() {
	begin := time.Now()
	l.done.Go(func() {
		timer := time.NewTimer(0)
		defer timer.Stop()
		for seq := int64(0); ; seq++ {
			timer.Reset(time.Until(begin.Add(time.Duration(seq) * time.Second / time.Duration(l.perSec))))
			select {
			case <-l.stop:
				return
			case <-timer.C:
			}
			apis := l.c.running("api")
			if len(apis) == 0 {
				l.record(webhookResult{seq: seq, sent: time.Now(), err: errors.New("no api is up")})
				continue
			}
			r := webhookResult{seq: seq, url: "faults", api: apis[int(seq)%len(apis)]}
			if l.queuedEvery > 0 && seq%int64(l.queuedEvery) == 0 {
				r.url, r.seconds = "faults-queued", 0.05+0.1*rand.Float64()
			} else {
				r.seconds = loadDuration()
				if rand.IntN(20) == 0 {
					r.exit = 3
				}
			}
			l.done.Go(func() { l.send(r) })
		}
	})
}

// loadDuration is how long an action of the load sleeps: mostly 50 to 500 ms, and one in ten
// a few seconds, so that kills find actions running.
func loadDuration() float64 {
	if rand.IntN(10) == 0 {
		return 2 + 3*rand.Float64()
	}
	return 0.05 + 0.45*rand.Float64()
}

func (l *webhookLoad) send(r webhookResult) {
	body, _ := json.Marshal(map[string]any{"seq": r.seq, "seconds": roundMS(r.seconds), "exit": r.exit})
	r.sent = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), loadClientTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.api.addr+"/api/v1/webhooks/"+r.url, bytes.NewReader(body))
	if err != nil {
		r.err = err
		l.record(r)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	r.latency = time.Since(r.sent)
	if err != nil {
		r.err = err
		l.record(r)
		return
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	var out struct {
		Data struct {
			EventID int64 `json:"event_id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && r.status == http.StatusAccepted {
		r.err = fmt.Errorf("decode answer: %w", err)
	}
	r.eventID = out.Data.EventID
	l.record(r)
}

func roundMS(s float64) float64 { return float64(int(s*1000)) / 1000 }

func (l *webhookLoad) record(r webhookResult) {
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
}

// stopLoad stops sending and waits for the answers still awaited.
func (l *webhookLoad) stopLoad() {
	close(l.stop)
	l.done.Wait()
}

// all lists every request, in the order they were made.
func (l *webhookLoad) all() []webhookResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.results)
	slices.SortFunc(out, func(a, b webhookResult) int { return int(a.seq - b.seq) })
	return out
}
