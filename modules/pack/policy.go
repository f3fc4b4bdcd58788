package pack

import (
	"errors"
	"fmt"
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
	QueueTimeoutSeconds *int   `json:"queue_timeout_seconds,omitempty" yaml:"queue_timeout_seconds"`
	File                string `json:"file,omitempty" yaml:"-"`
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
	if p.Concurrency == nil && p.RateLimit == nil {
		// Queue bounds only matter once a limit makes executions wait.
		return fieldError("concurrency", errors.New("a policy needs concurrency, rate_limit or both"))
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
