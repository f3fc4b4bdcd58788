package pack

import (
	"errors"
	"fmt"
	"slices"

	"github.com/attune-go/attune/store"
)

// Backoffs between attempts.
const (
	BackoffConstant    = "constant"
	BackoffExponential = "exponential"
)

// RetryStatuses are the endings a retry may repeat an attempt after.
var RetryStatuses = []string{store.ExecutionFailed, store.ExecutionTimeout, store.ExecutionAbandoned}

// maxRetryAttempts bounds max_attempts: a retry is for a flaky call, not a loop.
const maxRetryAttempts = 100

// maxRetryDelaySeconds bounds a wait between attempts: 30 days.
const maxRetryDelaySeconds = 30 * 24 * 60 * 60

// Retry says when an action's execution is tried again, as an action or a policy declares it.
// Each attempt is an execution of its own, linked to the first.
type Retry struct {
	// MaxAttempts counts every attempt, the first included.
	MaxAttempts int `json:"max_attempts" yaml:"max_attempts"`
	// On lists the endings that lead to another attempt; default failed and timeout. An
	// abandoned attempt (its worker died) may have done part of its work, so retrying it is
	// asked for by name.
	On []string `json:"on,omitempty" yaml:"on"`
	// DelaySeconds is the wait before the second attempt.
	DelaySeconds int `json:"delay_seconds,omitempty" yaml:"delay_seconds"`
	// Backoff is constant (every wait DelaySeconds) or exponential (doubling each time).
	Backoff string `json:"backoff,omitempty" yaml:"backoff"`
	// MaxDelaySeconds caps an exponential wait.
	MaxDelaySeconds *int `json:"max_delay_seconds,omitempty" yaml:"max_delay_seconds"`
}

// check validates r and fills in its defaults; field names where r sits, for errors.
func (r *Retry) check(field string) error {
	if r == nil {
		return nil
	}
	if r.MaxAttempts < 1 || r.MaxAttempts > maxRetryAttempts {
		return fieldError(field+".max_attempts", fmt.Errorf("want 1 to %d (every attempt, the first included), got %d", maxRetryAttempts, r.MaxAttempts))
	}
	if len(r.On) == 0 {
		r.On = []string{store.ExecutionFailed, store.ExecutionTimeout}
	}
	for i, status := range r.On {
		if !slices.Contains(RetryStatuses, status) {
			return fieldError(fmt.Sprintf("%s.on[%d]", field, i), fmt.Errorf("unknown status %q; want %s", status, orList(RetryStatuses)))
		}
	}
	if r.DelaySeconds < 0 || r.DelaySeconds > maxRetryDelaySeconds {
		return fieldError(field+".delay_seconds", fmt.Errorf("want 0 to %d (30 days), got %d", maxRetryDelaySeconds, r.DelaySeconds))
	}
	switch r.Backoff {
	case "":
		r.Backoff = BackoffConstant
	case BackoffConstant, BackoffExponential:
	default:
		return fieldError(field+".backoff", fmt.Errorf("unknown backoff %q; want constant or exponential", r.Backoff))
	}
	if m := r.MaxDelaySeconds; m != nil {
		switch {
		case r.Backoff != BackoffExponential:
			return fieldError(field+".max_delay_seconds", errors.New("only an exponential backoff grows to a maximum"))
		case *m < r.DelaySeconds || *m > maxRetryDelaySeconds:
			return fieldError(field+".max_delay_seconds", fmt.Errorf("want delay_seconds (%d) to %d (30 days), got %d", r.DelaySeconds, maxRetryDelaySeconds, *m))
		}
	}
	return nil
}

// storeRetry is r as the store keeps it.
func storeRetry(r *Retry) *store.Retry {
	if r == nil {
		return nil
	}
	return &store.Retry{MaxAttempts: r.MaxAttempts, On: r.On, DelaySeconds: r.DelaySeconds, Backoff: r.Backoff, MaxDelaySeconds: r.MaxDelaySeconds}
}

// retryFromStore is the reverse of storeRetry.
func retryFromStore(r *store.Retry) *Retry {
	if r == nil {
		return nil
	}
	return &Retry{MaxAttempts: r.MaxAttempts, On: r.On, DelaySeconds: r.DelaySeconds, Backoff: r.Backoff, MaxDelaySeconds: r.MaxDelaySeconds}
}
