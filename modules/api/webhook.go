package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// WebhookRate limits the webhooks one api replica takes per url: a token bucket per url
// holding Burst tokens, refilled at PerSecond. The zero value takes every webhook.
type WebhookRate struct {
	PerSecond float64
	Burst     int
}

// admitWebhook decides whether POST /webhooks/{url} is taken, before its body is read: 404
// when no enabled rule listens on the url and it is not registered (has a secret), since
// anyone may post and each event is stored. It returns the url's route, whose secret the body
// is checked against.
func (m *Module) admitWebhook(c echo.Context, url string) (store.WebhookRoute, error) {
	route, err := m.deps.Store.WebhookRouteFor(c.Request().Context(), url)
	if err != nil {
		return store.WebhookRoute{}, err
	}
	if !route.Registered && !route.Listened {
		return route, &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(
			"webhook %s: no enabled rule listens on it, and it is not registered (PUT /api/v1/webhook-secrets/%s registers it)", url, url)}
	}
	return route, nil
}

// limitWebhook answers 429 when url is over its rate. For a url with a secret it runs once the
// signature is checked: posts that fail it (anyone may post) would otherwise spend the url's
// tokens, and its real sender would be refused.
func (m *Module) limitWebhook(c echo.Context, url string) error {
	if wait, ok := m.webhookBuckets.take(url, time.Now()); !ok {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: fmt.Sprintf(
			"webhook %s: over its rate of %g a second (burst %d) on this replica; retry after %ds",
			url, m.cfg.WebhookRate.PerSecond, m.cfg.WebhookRate.Burst, secs)}
	}
	return nil
}

// buckets is a token bucket per url. Only urls that passed the route check get one, so their
// number is bounded by the rules and secrets; buckets full again are dropped all the same
// once there are many, as forgetting a full bucket changes nothing.
type buckets struct {
	rate  WebhookRate
	mu    sync.Mutex
	byURL map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets is the count past which full buckets are dropped.
const maxBuckets = 10000

// newBuckets returns the buckets of rate, nil (taking everything) when rate is zero.
func newBuckets(rate WebhookRate) *buckets {
	if rate.PerSecond <= 0 {
		return nil
	}
	rate.Burst = max(rate.Burst, 1)
	return &buckets{rate: rate, byURL: make(map[string]*bucket)}
}

// take spends one of url's tokens at now, or says how long until one is there.
func (bs *buckets) take(url string, now time.Time) (time.Duration, bool) {
	if bs == nil {
		return 0, true
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.byURL[url]
	if !ok {
		if len(bs.byURL) >= maxBuckets {
			bs.dropFull(now)
		}
		b = &bucket{tokens: float64(bs.rate.Burst), at: now}
		bs.byURL[url] = b
	}
	b.refill(bs.rate, now)
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / bs.rate.PerSecond * float64(time.Second)), false
}

func (b *bucket) refill(rate WebhookRate, now time.Time) {
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = min(float64(rate.Burst), b.tokens+elapsed*rate.PerSecond)
		b.at = now
	}
}

func (bs *buckets) dropFull(now time.Time) {
	for url, b := range bs.byURL {
		if b.refill(bs.rate, now); b.tokens >= float64(bs.rate.Burst) {
			delete(bs.byURL, url)
		}
	}
}
