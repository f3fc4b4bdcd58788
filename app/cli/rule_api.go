package cli

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

// newRuleAPICommands are the rule commands that call the API. "rule test" needs no server, so
// each has API flags of its own rather than the rule command's.
func newRuleAPICommands(streams Streams) []*cobra.Command {
	const path = "/api/v1/rules"
	return []*cobra.Command{
		ownAPI(func(api *apiFlags) *cobra.Command {
			return newListCommand(streams, api, listCommand{noun: "rules", path: path, columns: ruleColumns, all: true, packFilter: true})
		}),
		ownAPI(func(api *apiFlags) *cobra.Command { return newShowCommand(streams, api, "rule", path) }),
		ownAPI(func(api *apiFlags) *cobra.Command { return newRuleCreateCommand(streams, api) }),
		ownAPI(func(api *apiFlags) *cobra.Command {
			return newStateCommand(streams, api, path, "enable", "Enable a rule: the next event of its trigger sees it")
		}),
		ownAPI(func(api *apiFlags) *cobra.Command {
			return newStateCommand(streams, api, path, "disable", "Disable a rule: the next event of its trigger no longer sees it")
		}),
		ownAPI(func(api *apiFlags) *cobra.Command { return newRuleDeleteCommand(streams, api) }),
	}
}

// ownAPI builds a command with API flags, -o included, of its own.
func ownAPI(build func(api *apiFlags) *cobra.Command) *cobra.Command {
	var api apiFlags
	cmd := build(&api)
	api.register(cmd.Flags())
	api.registerOutput(cmd.Flags())
	return cmd
}

func newRuleCreateCommand(streams Streams, api *apiFlags) *cobra.Command {
	var file, packRef string
	cmd := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create a rule from a rule file, as written in a pack's rules/ directory",
		Long: `Reads a rule file in the format of a pack's rules/*.yaml (ref or name, label, description,
trigger_ref, trigger_params, conditions, action_ref, action_params, enabled) and creates the
rule through the API, in the pack that is its ref's prefix, or --pack when the file gives a
name alone. The pack must be registered. The server checks the rule as registering its pack
would (its trigger and action exist, trigger_params fit the trigger and a timer's make a
schedule, conditions and templates compile, literal action_params fit the action) and the rule
matcher and timers follow it at once. Prints the rule created.

A rule created in a pack registered from a directory is removed when that pack is registered
from its directory again: keep such rules in a pack of their own, or in the pack's files.`,
		Example: `  attune rule create -f on_push.yaml
  attune rule create -f rules/nightly.yaml --pack ops`,
		Args: UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return UsageError{errors.New("-f is required: the rule file to create (see attune rule create --help)")}
			}
			r, err := readRule(file)
			if err != nil {
				return fmt.Errorf("read rule %s: %w", file, err)
			}
			if r.Ref == "" && packRef == "" {
				return UsageError{fmt.Errorf("rule %s gives a name and no ref: say which pack it joins with --pack", file)}
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), "/api/v1/rules", r.request(packRef))
			if err != nil {
				return fmt.Errorf("create rule from %s: %w", file, err)
			}
			return printObject(streams.Out, api.output, data)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rule YAML file, as in a pack's rules/ directory")
	cmd.Flags().StringVar(&packRef, "pack", "", "the pack the rule joins; default its ref's prefix")
	return cmd
}

// request is the rule as the API's POST /rules takes it: the file's keys as written, and
// pack_ref when given.
func (r *ruleDoc) request(packRef string) map[string]any {
	body := map[string]any{"trigger_ref": r.TriggerRef, "trigger_params": r.TriggerParams, "action_ref": r.ActionRef,
		"action_params": r.ActionParams, "label": r.Label, "description": r.Description}
	for key, v := range map[string]string{"ref": r.Ref, "name": r.Name, "pack_ref": packRef} {
		if v != "" {
			body[key] = v
		}
	}
	if r.Conditions != nil {
		body["conditions"] = r.Conditions
	}
	if r.Enabled != nil {
		body["enabled"] = *r.Enabled
	}
	return body
}

// newStateCommand is "NOUN enable|disable REF": a POST to path/REF/verb, printing what it
// answers.
func newStateCommand(streams Streams, api *apiFlags, path, verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " REF",
		Short: short,
		Args:  UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), path+"/"+url.PathEscape(args[0])+"/"+verb, nil)
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
}

func newRuleDeleteCommand(streams Streams, api *apiFlags) *cobra.Command {
	return newDeleteCommand(streams, api, deleteCommand{noun: "rule", key: "REF", path: "/api/v1/rules",
		short: "Delete a rule; its enforcements and their executions stay"})
}
