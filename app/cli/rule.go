package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/ruleeval"
)

func newRuleCommand(streams Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rule",
		Short: "Work with rules: test one offline, or list, show, create, enable, disable and delete them through the API",
		Long:  `Rules turn a trigger's events into executions of an action when the events match their conditions.`,
	}
	cmd.AddCommand(newRuleTestCommand(streams))
	cmd.AddCommand(newRuleAPICommands(streams)...)
	return cmd
}

// ruleTestResult is what "attune rule test" prints. Parameters is an any so that omitempty
// drops it only when unset: a matching rule without parameters still prints {}.
type ruleTestResult struct {
	Rule       string `json:"rule"`
	Matched    bool   `json:"matched"`
	ActionRef  string `json:"action_ref,omitempty"`
	Parameters any    `json:"parameters,omitempty"`
}

func newRuleTestCommand(streams Streams) *cobra.Command {
	var ruleFile, payloadFile, trigger string
	cmd := &cobra.Command{
		Use:   "test --rule FILE --payload FILE",
		Short: "Evaluate one rule file against one event payload, without a server",
		Long: `Evaluates a rule, written as in a pack's rules/ directory, against an event payload as the
rules engine would, and prints the outcome as JSON: whether the conditions match and, if
they do, the action and its rendered parameters.

The payload file holds the event's payload object, as JSON or YAML. The event's trigger_ref
(event.trigger_ref in templates) is the rule's, unless --trigger gives another; the event id
is 0. The rule's "enabled" is read but not consulted: this tests what the rule would do.

The rule is checked as the server would check it, as far as can be known without one: its
conditions and templates compile and, when it names a trigger or an action of the built-in
core pack, its trigger_params fit the trigger (a timer's schedule included: cron fields in
range, an interval above 0, an RFC 3339 fire_at, a known time zone) and its literal
action_params fit the action. Other packs' actions are the server's to check.

Exit status: 0 when the rule matches, 1 when it does not, 2 when the rule or the payload is
invalid (unreadable, not YAML or JSON, an unknown key, a condition or template that does not
compile, trigger_params or action_params that the core pack refuses, or an expression that
fails on this payload).`,
		Example: `  attune rule test --rule packs/demo/rules/on_webhook.yaml --payload event.json
  attune rule test --rule on_webhook.yaml --payload event.yaml --trigger core.webhook`,
		Args: UsageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if ruleFile == "" || payloadFile == "" {
				return UsageError{errors.New("--rule and --payload are required (see attune rule test --help)")}
			}
			res, err := testRule(ruleFile, payloadFile, trigger)
			if err != nil {
				// Exit 2, as for usage errors: the command could not give an answer.
				return UsageError{err}
			}
			enc := json.NewEncoder(streams.Out)
			enc.SetIndent("", "  ")
			// Parameters go into commands and messages, not HTML.
			enc.SetEscapeHTML(false)
			if err := enc.Encode(res); err != nil {
				return fmt.Errorf("write result: %w", err)
			}
			if !res.Matched {
				return ExitCode(1)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ruleFile, "rule", "", "rule YAML file, as in a pack's rules/ directory")
	fs.StringVar(&payloadFile, "payload", "", "event payload file: a JSON or YAML object")
	fs.StringVar(&trigger, "trigger", "", "trigger ref of the event; default the rule's trigger_ref")
	return cmd
}

// testRule evaluates the rule in ruleFile against the payload in payloadFile. Errors name the
// file at fault.
func testRule(ruleFile, payloadFile, trigger string) (ruleTestResult, error) {
	r, err := readRule(ruleFile)
	if err != nil {
		return ruleTestResult{}, fmt.Errorf("read rule %s: %w", ruleFile, err)
	}
	cond, err := ruleeval.ParseConditions(r.Conditions)
	if err != nil {
		return ruleTestResult{}, fmt.Errorf("rule %s: %w", ruleFile, err)
	}
	if err := ruleeval.ValidateTemplates(r.ActionParams); err != nil {
		return ruleTestResult{}, fmt.Errorf("rule %s: %w", ruleFile, err)
	}
	// The core pack is all that is known without a server: its timers' schedules and its
	// actions' parameters are checked as the server would.
	core, err := pack.Core()
	if err != nil {
		return ruleTestResult{}, err
	}
	if err := pack.CheckRuleWithin(core, r.packRule()); err != nil {
		return ruleTestResult{}, fmt.Errorf("rule %s: %w", ruleFile, err)
	}
	payload, err := readPayload(payloadFile)
	if err != nil {
		return ruleTestResult{}, fmt.Errorf("read payload %s: %w", payloadFile, err)
	}
	if trigger == "" {
		trigger = r.TriggerRef
	}
	in := ruleeval.Input{EventID: 0, TriggerRef: trigger, Payload: payload, RuleRef: r.ref()}
	res := ruleTestResult{Rule: r.ref()}
	if res.Matched, err = cond.Match(in); err != nil {
		return ruleTestResult{}, fmt.Errorf("evaluate rule %s on payload %s: %w", ruleFile, payloadFile, err)
	}
	if !res.Matched {
		return res, nil
	}
	params, err := ruleeval.Render(r.ActionParams, in)
	if err != nil {
		return ruleTestResult{}, fmt.Errorf("render rule %s on payload %s: %w", ruleFile, payloadFile, err)
	}
	res.ActionRef, res.Parameters = r.ActionRef, params
	return res, nil
}
