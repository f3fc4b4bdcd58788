package cli

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

var inquiryColumns = []column{{"ID", "id", 0}, {"EXECUTION", "execution_id", 0}, {"STATUS", "status", 0}, {"TIMEOUT AT", "timeout_at", 0},
	{"RESPONDED BY", "responded_by", 0}, {"PROMPT", "prompt", 60}}

func newInquiryCommand(streams Streams) *cobra.Command {
	return newReadNoun(streams, "inquiry", "List, show and answer inquiries (questions core.ask waits on) through the API",
		listCommand{noun: "the latest inquiries, newest first", path: "/api/v1/inquiries", columns: inquiryColumns, recent: true,
			filters: []queryFlag{
				{"status", "status", "only inquiries in this status (pending, responded, timed_out, cancelled)"},
				{"execution", "execution_id", "only the inquiry of this execution id"},
				{"workflow", "workflow_id", "only the inquiries of this workflow execution id's tasks"},
			}},
		func(api *apiFlags) *cobra.Command {
			return newShowByIDCommand(streams, api, "inquiry", "/api/v1/inquiries")
		},
		func(api *apiFlags) *cobra.Command { return newInquiryRespondCommand(streams, api) })
}

func newInquiryRespondCommand(streams Streams, api *apiFlags) *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "respond ID --data JSON|@FILE|-",
		Short: "Answer an inquiry",
		Long: `Answers inquiry ID with the JSON --data gives: inline, @FILE for a file holding it, or - to
read it from stdin. The answer must fit the inquiry's schema (the server names the part that
does not) and you must be one the inquiry allows; the inquiry's execution then completes with
the answer as its result, and a workflow that asked goes on. Prints the inquiry answered.`,
		Example: `  attune inquiry respond 3 --data '{"approved": true}'
  attune inquiry respond 3 --data @answer.json`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return UsageError{fmt.Errorf("invalid inquiry id %q: want a positive integer", args[0])}
			}
			if data == "" {
				return Usagef("--data is required: the answer, as JSON")
			}
			raw, err := readDataArg(streams, data)
			if err != nil {
				return Usagef("invalid --data: %v", err)
			}
			if !json.Valid(raw) {
				return Usagef("invalid --data: not JSON")
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			out, err := client.post(cmd.Context(), "/api/v1/inquiries/"+strconv.FormatInt(id, 10)+"/respond",
				map[string]json.RawMessage{"response": raw})
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, out)
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the answer: JSON, @FILE, or - for stdin")
	return cmd
}
