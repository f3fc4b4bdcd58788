package pack

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// A rule that could never work is refused when it is checked, not found out at the first
// event: a timer whose schedule cannot be read, literal action_params that do not fit the
// action. Templated values pass on their syntax, their type being the event's to give.
func TestCheckRuleRefusesWhatCanNeverWork(t *testing.T) {
	t.Parallel()
	reg := newMemRegistrar(t)
	ctx := context.Background()
	rule := func(trigger string, params map[string]any, action string, actionParams map[string]any) Rule {
		r := Rule{Ref: "ops.r", TriggerRef: trigger, TriggerParams: params, ActionRef: action, ActionParams: actionParams}
		require.NoError(t, ValidateRule(&r, "ops"), "normalised as a file or a request body is")
		return r
	}
	hook := map[string]any{"url": "x"}

	for name, r := range map[string]Rule{
		"cron":                rule("core.crontimer", map[string]any{"expression": "*/5 9-17 * * MON-FRI", "timezone": "Europe/Paris"}, "core.noop", nil),
		"cron with seconds":   rule("core.crontimer", map[string]any{"expression": "30 0 * * * *"}, "core.noop", nil),
		"interval":            rule("core.intervaltimer", map[string]any{"interval": 5, "unit": "minutes"}, "core.noop", nil),
		"date in the past":    rule("core.datetimetimer", map[string]any{"fire_at": "2001-01-02T15:04:05+02:00"}, "core.noop", nil),
		"literal parameters":  rule("core.webhook", hook, "core.http_request", map[string]any{"url": "http://x", "method": "POST", "timeout": 5}),
		"defaults fill in":    rule("core.webhook", hook, "core.http_request", map[string]any{"url": "http://x"}),
		"whole template":      rule("core.webhook", hook, "core.sleep", map[string]any{"seconds": "{{ event.payload.body.n * 2 }}"}),
		"template in an enum": rule("core.webhook", hook, "core.http_request", map[string]any{"url": "{{ event.payload.body.url }}", "method": "{{ event.payload.body.m }}"}),
		"template in text":    rule("core.webhook", hook, "core.echo", map[string]any{"message": "hello {{ event.payload.body.name }}"}),
		"template in object":  rule("core.webhook", hook, "core.http_request", map[string]any{"url": "http://x", "headers": map[string]any{"X-N": "{{ event.id }}"}}),
	} {
		require.NoError(t, CheckRule(ctx, reg, r), name)
	}

	tests := []struct {
		name string
		rule Rule
		want string
	}{
		{"cron field", rule("core.crontimer", map[string]any{"expression": "61 * * * *"}, "core.noop", nil),
			"trigger_params.expression: field 1 (minute): 61 is out of range 0-59"},
		{"cron never fires", rule("core.crontimer", map[string]any{"expression": "0 0 31 4 *"}, "core.noop", nil),
			`trigger_params.expression: "0 0 31 4 *" never fires: no date in the next five years matches it`},
		{"zero interval", rule("core.intervaltimer", map[string]any{"interval": 0}, "core.noop", nil),
			"trigger_params.interval: want an integer greater than 0, got 0"},
		{"fire_at", rule("core.datetimetimer", map[string]any{"fire_at": "tomorrow"}, "core.noop", nil),
			`trigger_params.fire_at: "tomorrow" is not an RFC 3339 time; want a date, a time and a zone, such as 2030-01-02T15:04:05Z or 2030-01-02T15:04:05+02:00`},
		{"timezone", rule("core.crontimer", map[string]any{"expression": "0 9 * * *", "timezone": "Mars/Olympus"}, "core.noop", nil),
			`trigger_params.timezone: unknown time zone "Mars/Olympus"; want an IANA name such as UTC or Europe/Paris`},
		{"a misspelt timer key", rule("core.crontimer", map[string]any{"cron": "0 9 * * *"}, "core.noop", nil),
			"trigger_params.cron: unknown; want expression or timezone"},
		{"type", rule("core.webhook", hook, "core.sleep", map[string]any{"seconds": "three"}),
			`action_params.seconds: want number, got "three"`},
		{"enum", rule("core.webhook", hook, "core.http_request", map[string]any{"url": "http://x", "method": "FETCH"}),
			`action_params.method: "FETCH" is not one of "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"`},
		{"unknown", rule("core.webhook", hook, "core.echo", map[string]any{"message": "hi", "colour": "red"}),
			"action_params.colour: unknown; want message"},
		{"none accepted", rule("core.webhook", hook, "core.noop", map[string]any{"x": 1}),
			"action_params.x: unknown; none are accepted"},
		{"required", rule("core.webhook", hook, "core.echo", nil),
			"action_params.message: required"},
		{"unknown, templated", rule("core.webhook", hook, "core.echo", map[string]any{"message": "hi", "who": "{{ event.id }}"}),
			"action_params.who: unknown; want message"},
		{"text template for a number", rule("core.webhook", hook, "core.sleep", map[string]any{"seconds": "n-{{ event.id }}"}),
			"action_params.seconds: want number, got text with {{ }} templates, which renders to a string; a value that is one {{ }} template alone keeps the type of its result"},
		{"template syntax", rule("core.webhook", hook, "core.echo", map[string]any{"message": "{{ event.payload. }}"}),
			`action_params.message: compile template "event.payload.": `},
	}
	for _, tt := range tests {
		err := CheckRule(ctx, reg, tt.rule)
		require.ErrorContains(t, err, tt.want, tt.name)
		var perr *Error
		require.ErrorAs(t, err, &perr, tt.name)
	}
}

// A secret parameter's value stays out of the refusal.
func TestCheckRuleKeepsSecretsOutOfErrors(t *testing.T) {
	t.Parallel()
	reg := newMemRegistrar(t)
	p, err := LoadFS(mapFS(map[string]string{
		"pack.yaml":      "ref: ops\n",
		"actions/a.yaml": "name: a\nrunner_type: noop\nparameters: {token: {type: integer, secret: true}, level: {type: string, enum: [a, b], secret: true}}\n",
		"rules/r.yaml":   "name: r\ntrigger_ref: core.webhook\ntrigger_params: {url: x}\naction_ref: ops.a\naction_params: {token: hunter2}\n",
	}), ".")
	require.NoError(t, err)
	_, err = Register(context.Background(), reg, p)
	require.EqualError(t, err, "rules/r.yaml: action_params.token: want integer, got string")

	p.Rules[0].ActionParams = map[string]any{"level": "hunter2"}
	_, err = Register(context.Background(), reg, p)
	require.EqualError(t, err, "rules/r.yaml: action_params.level: not one of the allowed values")
}

// Registering a pack again cannot change its actions' or triggers' parameters under a rule of
// another pack so that the rule no longer fits: that rule would never work again.
func TestRegisterKeepsOtherPacksRulesWorking(t *testing.T) {
	t.Parallel()
	reg := newMemRegistrar(t)
	ctx := context.Background()
	lib := func(countType, sizeType string) *Pack {
		p, err := LoadFS(mapFS(map[string]string{
			"pack.yaml":           "ref: lib\n",
			"actions/count.yaml":  "name: count\nrunner_type: noop\nparameters: {count: {type: " + countType + "}}\n",
			"triggers/sized.yaml": "name: sized\nparameters: {size: {type: " + sizeType + "}}\n",
		}), ".")
		require.NoError(t, err)
		return p
	}
	_, err := Register(ctx, reg, lib("integer", "integer"))
	require.NoError(t, err)
	ops, err := LoadFS(mapFS(map[string]string{
		"pack.yaml":          "ref: ops\n",
		"rules/on_push.yaml": "name: on_push\ntrigger_ref: lib.sized\ntrigger_params: {size: 3}\naction_ref: lib.count\naction_params: {count: 3}\n",
	}), ".")
	require.NoError(t, err)
	_, err = Register(ctx, reg, ops)
	require.NoError(t, err)

	_, err = Register(ctx, reg, lib("string", "integer"))
	require.EqualError(t, err, "actions/count.yaml: parameters: rule ops.on_push runs action lib.count and would no longer fit them: action_params.count: want string, got 3")
	_, err = Register(ctx, reg, lib("integer", "boolean"))
	require.EqualError(t, err, "triggers/sized.yaml: parameters: rule ops.on_push uses trigger lib.sized and would no longer fit them: trigger_params.size: want boolean, got 3")
	require.Len(t, reg.packs, 3, "core, lib, ops: nothing refused was written")
	_, err = Register(ctx, reg, lib("number", "number"))
	require.NoError(t, err, "a change the rule still fits")
}
