package pack

import (
	"errors"
	"fmt"
	"strings"

	"github.com/attune-go/attune/store"
)

// Policy methods: what happens to an execution that a limit does not admit.
const (
	// MethodEnqueue makes the execution wait for a slot.
	MethodEnqueue = "enqueue"
	// MethodCancel cancels the execution at once.
	MethodCancel = "cancel"
)

// Policy limits how executions of one action, or of every action of a pack, are admitted.
// Exactly one of ActionRef and PackRef is set.
type Policy struct {
	Ref       string `json:"ref" yaml:"ref"`
	Name      string `json:"name" yaml:"name"`
	ActionRef string `json:"action_ref,omitempty" yaml:"action_ref"`
	PackRef   string `json:"pack_ref,omitempty" yaml:"pack_ref"`
	Enabled   bool   `json:"enabled" yaml:"enabled"`
	// Concurrency bounds how many executions run at once; nil for no bound.
	Concurrency *Concurrency `json:"concurrency,omitempty" yaml:"concurrency"`
	// RateLimit bounds how many executions start in a window; nil for no bound.
	RateLimit *RateLimit `json:"rate_limit,omitempty" yaml:"rate_limit"`
	// MaxQueueLength bounds how many executions may wait; nil for no bound, 0 for none.
	MaxQueueLength *int `json:"max_queue_length,omitempty" yaml:"max_queue_length"`
	// QueueTimeoutSeconds bounds how long an execution may wait; nil for no bound.
	QueueTimeoutSeconds *int `json:"queue_timeout_seconds,omitempty" yaml:"queue_timeout_seconds"`
	// Retry, when set, tries an execution again when it fails; it wins over the action's
	// own. A policy with a retry alone limits nothing.
	Retry *Retry `json:"retry,omitempty" yaml:"retry"`
	// WorkerSelector names labels a worker must have to run the executions of the actions the
	// policy covers; it wins over an action's own. A policy with a selector alone limits nothing.
	WorkerSelector store.Labels `json:"worker_selector,omitempty" yaml:"worker_selector"`
	File           string       `json:"file,omitempty" yaml:"-"`
}

// Concurrency is a policy's bound on executions running at once.
type Concurrency struct {
	Limit int `json:"limit" yaml:"limit"`
	// Method is MethodEnqueue or MethodCancel.
	Method string `json:"method" yaml:"method"`
	// Parameters, when set, make the limit apply per distinct combination of these
	// parameters' values rather than to the action as a whole.
	Parameters []string `json:"parameters,omitempty" yaml:"parameters"`
}

// RateLimit is a policy's bound on executions started within a sliding window.
type RateLimit struct {
	MaxExecutions int `json:"max_executions" yaml:"max_executions"`
	WindowSeconds int `json:"window_seconds" yaml:"window_seconds"`
	// Method is MethodEnqueue or MethodCancel.
	Method string `json:"method" yaml:"method"`
}

// ValidatePolicy checks a policy that comes without a pack, such as one made through the API,
// by the rules the pack loader applies, and fills in its defaults (name, methods) as the loader
// does. Its ref must be a full <pack>.<name> ref; the pack need not exist. Whether action_ref
// names an existing action is for the caller to check, as CheckReferences does for packs.
func ValidatePolicy(p *Policy) error {
	if p.Ref == "" {
		// A file may give only a name, its pack supplying the rest; here nothing would.
		return fieldError("ref", errors.New("required"))
	}
	packRef, _, ok := strings.Cut(p.Ref, ".")
	if ok {
		// validate only compares the ref's pack part with the pack the file sits in, which the
		// loader has checked already; here the ref brings its own pack, so its form is checked.
		if err := checkPackRef(packRef); err != nil {
			return fieldError("ref", err)
		}
	}
	return p.validate(packRef)
}

// StorePolicy is p as the store keeps it.
func StorePolicy(p Policy) store.Policy {
	sp := store.Policy{Ref: p.Ref, Enabled: p.Enabled, MaxQueueLength: p.MaxQueueLength, QueueTimeoutSeconds: p.QueueTimeoutSeconds,
		Retry: storeRetry(p.Retry), WorkerSelector: p.WorkerSelector}
	if p.ActionRef != "" {
		sp.ActionRef = &p.ActionRef
	}
	if p.PackRef != "" {
		sp.PackRef = &p.PackRef
	}
	if c := p.Concurrency; c != nil {
		sp.ConcurrencyLimit, sp.ConcurrencyMethod, sp.ConcurrencyParameters = &c.Limit, c.Method, c.Parameters
	}
	if rl := p.RateLimit; rl != nil {
		sp.RateMaxExecutions, sp.RateWindowSeconds, sp.RateMethod = &rl.MaxExecutions, &rl.WindowSeconds, rl.Method
	}
	return sp
}

// PolicyFromStore is the reverse of StorePolicy: sp in the shape of a policy file.
func PolicyFromStore(sp store.Policy) Policy {
	p := Policy{Ref: sp.Ref, Enabled: sp.Enabled, MaxQueueLength: sp.MaxQueueLength, QueueTimeoutSeconds: sp.QueueTimeoutSeconds,
		Retry: retryFromStore(sp.Retry), WorkerSelector: sp.WorkerSelector}
	_, p.Name, _ = strings.Cut(sp.Ref, ".")
	if sp.ActionRef != nil {
		p.ActionRef = *sp.ActionRef
	}
	if sp.PackRef != nil {
		p.PackRef = *sp.PackRef
	}
	if sp.ConcurrencyLimit != nil {
		p.Concurrency = &Concurrency{Limit: *sp.ConcurrencyLimit, Method: sp.ConcurrencyMethod}
		// The store keeps no parameters as an empty array; a policy file leaves them out.
		if len(sp.ConcurrencyParameters) > 0 {
			p.Concurrency.Parameters = sp.ConcurrencyParameters
		}
	}
	// The schema sets both rate columns or neither.
	if sp.RateMaxExecutions != nil && sp.RateWindowSeconds != nil {
		p.RateLimit = &RateLimit{MaxExecutions: *sp.RateMaxExecutions, WindowSeconds: *sp.RateWindowSeconds, Method: sp.RateMethod}
	}
	return p
}

func (p *Policy) validate(packRef string) error {
	var err error
	if p.Ref, p.Name, err = resolveRef(packRef, p.Ref, p.Name); err != nil {
		return err
	}
	switch {
	case p.ActionRef == "" && p.PackRef == "":
		return fieldError("action_ref", errors.New("required, or pack_ref for every action of a pack"))
	case p.ActionRef != "" && p.PackRef != "":
		return fieldError("pack_ref", errors.New("give action_ref or pack_ref, not both"))
	case p.ActionRef != "":
		if err := checkRef(p.ActionRef); err != nil {
			return fieldError("action_ref", err)
		}
	default:
		if err := checkPackRef(p.PackRef); err != nil {
			return fieldError("pack_ref", err)
		}
	}
	if p.Concurrency == nil && p.RateLimit == nil && p.Retry == nil && p.WorkerSelector == nil {
		return fieldError("concurrency", errors.New("a policy needs at least one of concurrency, rate_limit, retry and worker_selector"))
	}
	if p.Concurrency == nil && p.RateLimit == nil && (p.MaxQueueLength != nil || p.QueueTimeoutSeconds != nil) {
		// Queue bounds only matter once a limit makes executions wait.
		return fieldError("max_queue_length", errors.New("bounds a queue, and only concurrency or rate_limit makes one"))
	}
	if err := p.Retry.check("retry"); err != nil {
		return err
	}
	if err := checkSelector(p.WorkerSelector, ""); err != nil {
		return err
	}
	if c := p.Concurrency; c != nil {
		if c.Limit <= 0 {
			return fieldError("concurrency.limit", fmt.Errorf("want more than 0, got %d", c.Limit))
		}
		if c.Method, err = checkMethod(c.Method); err != nil {
			return fieldError("concurrency.method", err)
		}
		for i, name := range c.Parameters {
			if !paramNamePattern.MatchString(name) {
				return fieldError(fmt.Sprintf("concurrency.parameters[%d]", i), fmt.Errorf("%q is not a parameter name", name))
			}
		}
	}
	if r := p.RateLimit; r != nil {
		if r.MaxExecutions <= 0 {
			return fieldError("rate_limit.max_executions", fmt.Errorf("want more than 0, got %d", r.MaxExecutions))
		}
		if r.WindowSeconds <= 0 {
			return fieldError("rate_limit.window_seconds", fmt.Errorf("want more than 0, got %d", r.WindowSeconds))
		}
		if r.Method, err = checkMethod(r.Method); err != nil {
			return fieldError("rate_limit.method", err)
		}
	}
	if n := p.MaxQueueLength; n != nil && *n < 0 {
		return fieldError("max_queue_length", fmt.Errorf("want 0 or more, got %d", *n))
	}
	if n := p.QueueTimeoutSeconds; n != nil && *n <= 0 {
		return fieldError("queue_timeout_seconds", fmt.Errorf("want more than 0, got %d", *n))
	}
	return nil
}

// checkMethod returns the method with its default filled in.
func checkMethod(method string) (string, error) {
	switch method {
	case "":
		return MethodEnqueue, nil
	case MethodEnqueue, MethodCancel:
		return method, nil
	}
	return "", fmt.Errorf("unknown method %q; want enqueue or cancel", method)
}
