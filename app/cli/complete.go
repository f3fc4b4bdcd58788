package cli

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// completeFromList completes a value from the list at path: the field key of each item,
// described by its fields described. Any failure completes nothing, quietly: a shell's
// completion has nowhere to say why. all reads every page, else the first page of the
// largest size.
func (a *apiFlags) completeFromList(path, key string, all bool, described ...string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		client := a.lookupClient()
		if client == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(commandContext(cmd), lookupTimeout)
		defer cancel()
		items, err := client.list(ctx, path, url.Values{"per_page": {strconv.Itoa(maxPerPage)}}, all)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var choices []cobra.Completion
		for _, raw := range items {
			var item map[string]json.RawMessage
			if json.Unmarshal(raw, &item) != nil {
				continue
			}
			value := cell(item[key], 0)
			if value == "" || !strings.HasPrefix(value, toComplete) {
				continue
			}
			description := make([]string, len(described))
			for i, field := range described {
				description[i] = cell(item[field], 0) // shells fit descriptions to the terminal
			}
			choices = append(choices, cobra.CompletionWithDesc(value, strings.Join(description, " ")))
		}
		return choices, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeActionRef completes an action's ref, from the API.
func (a *apiFlags) completeActionRef() cobra.CompletionFunc {
	return a.completeFromList("/api/v1/actions", "ref", true, "description")
}

// completeExecutionID completes the id of one of the latest hundred executions, from the API.
func (a *apiFlags) completeExecutionID() cobra.CompletionFunc {
	return a.completeFromList("/api/v1/executions", "id", false, "action_ref", "status")
}

// firstArg completes the first positional argument with complete, and nothing after it.
func firstArg(complete cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(cmd, args, toComplete)
	}
}

// completeOutputFlags makes every -o/--output under cmds complete the output formats.
func completeOutputFlags(cmds []*cobra.Command) {
	formats := cobra.FixedCompletions([]cobra.Completion{string(outputTable), string(outputJSON), string(outputYAML)},
		cobra.ShellCompDirectiveNoFileComp)
	for _, cmd := range cmds {
		// Flags() before the command runs holds its own flags, without its parents'.
		for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if _, ok := f.Value.(*outputFormat); ok {
					_ = cmd.RegisterFlagCompletionFunc(f.Name, formats)
				}
			})
		}
		completeOutputFlags(cmd.Commands())
	}
}
