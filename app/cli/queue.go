package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"
)

// queueGroupColumns are the columns of an action's queues under a policy that limits each
// combination of some parameters' values apart: GROUP is the JSON array of those values.
var queueGroupColumns = []column{{"GROUP", "key", 60}, {"ACTIVE", "active", 0}, {"QUEUED", "queued", 0}}

func newActionQueueCommand(streams Streams, api *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "queue ACTION",
		Short: "Show how an action's executions stand under its policy: how many run, how many wait",
		Long: `Shows the admission of action ACTION's executions: the concurrency limit of the policy in
force (none without one), how many executions hold a slot (active), how many wait their turn
(queued) and since when the oldest has waited. Under a policy that limits each combination of
some parameters' values apart, a table of those groups follows, the values of secret
parameters masked.`,
		Example: `  attune action queue core.sleep
  attune action queue core.sleep -o json`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), "/api/v1/actions/"+url.PathEscape(args[0])+"/queue-stats")
			if err != nil {
				return err
			}
			return printQueue(streams.Out, api.output, data)
		},
	}
}

// printQueue prints an action's queue figures; as a table, a limit of none says so, and the
// groups follow as a table of their own when the policy groups by parameters.
func printQueue(w io.Writer, format outputFormat, data json.RawMessage) error {
	if format != outputTable {
		return printObject(w, format, data)
	}
	fields, err := orderedFields(data)
	if err != nil {
		return err
	}
	var groups []json.RawMessage
	var keys []struct {
		Key string `json:"key"`
	}
	shown := fields[:0:0]
	for _, f := range fields {
		switch f.name {
		case "groups":
			if err := json.Unmarshal(f.value, &groups); err != nil {
				return fmt.Errorf("decode queue groups: %w", err)
			}
			if err := json.Unmarshal(f.value, &keys); err != nil {
				return fmt.Errorf("decode queue groups: %w", err)
			}
			continue
		case "limit":
			if string(f.value) == "null" {
				f.value = json.RawMessage(`"none"`)
			}
		}
		shown = append(shown, f)
	}
	if err := printFields(w, shown); err != nil {
		return err
	}
	for _, k := range keys {
		// A policy that groups by nothing has one group, keyed "": the figures above are its.
		if k.Key != "" {
			fmt.Fprintln(w)
			return printList(w, format, groups, queueGroupColumns)
		}
	}
	return nil
}
