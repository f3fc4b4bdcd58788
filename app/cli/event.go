package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newEventCreateCommand(streams Streams, api *apiFlags) *cobra.Command {
	var payload string
	cmd := &cobra.Command{
		Use:   "create TRIGGER [--payload JSON | @FILE | -]",
		Short: "Fire a trigger by hand: record an event of it, which its rules see",
		Long: `Records an event of trigger TRIGGER with the payload given, checked against the trigger's
output schema by the server, and prints the event's id. The rules on the trigger see it as
they see any other event; a webhook's rules see the core.webhook events whose payload's url
is theirs, as a body posted to /api/v1/webhooks/URL makes.

--payload takes a JSON object, @FILE for one in a file (JSON or YAML), or - to read it from
stdin; without it the payload is {}.`,
		Example: `  attune event create core.webhook --payload '{"url": "demo", "headers": {}, "body": {"name": "Ada", "kind": "order"}}'
  attune event create ops.alert --payload @alert.yaml`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if payload != "" {
				var err error
				if body, err = readPayloadArg(streams, payload); err != nil {
					return Usagef("invalid --payload: %v", err)
				}
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), "/api/v1/events", map[string]any{"trigger_ref": args[0], "payload": body})
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
	cmd.Flags().StringVar(&payload, "payload", "", "the event's payload: a JSON object, @FILE (JSON or YAML), or - for stdin")
	return cmd
}

// readPayloadArg reads --payload's object: inline, from @FILE, or from stdin for -.
func readPayloadArg(streams Streams, arg string) (map[string]any, error) {
	data, err := readDataArg(streams, arg)
	if err != nil {
		return nil, err
	}
	return decodeObject(data, "payload")
}

// readDataArg reads a flag's data given inline, as @FILE, or as - for stdin.
func readDataArg(streams Streams, arg string) ([]byte, error) {
	if file, ok := strings.CutPrefix(arg, "@"); ok {
		return readInput(streams, file)
	}
	if arg == "-" {
		return readInput(streams, "-")
	}
	return []byte(arg), nil
}

// readInput reads file whole, or stdin for -.
func readInput(streams Streams, file string) ([]byte, error) {
	if file != "-" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, unwrapPathError(err))
		}
		return data, nil
	}
	if streams.In == nil {
		return nil, errors.New("no stdin to read")
	}
	data, err := io.ReadAll(streams.In)
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	return data, nil
}
