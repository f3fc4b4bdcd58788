package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/modules/pack"
)

func newPolicyCreateCommand(streams Streams, api *apiFlags) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create a policy from a policy file, as written in a pack's policies/ directory",
		Long: `Reads a policy in the format of a pack's policies/*.yaml, as YAML or JSON (ref, action_ref or
pack_ref, enabled, concurrency, rate_limit, max_queue_length, queue_timeout_seconds, retry),
and creates it through the API; -f - reads it from stdin. The server checks it as registering
a pack would, and the executors apply it to the executions created after. Prints the policy
created.`,
		Example: `  attune policy create -f testdata/policies/one_sleep.yaml
  echo '{"ref": "ops.one_deploy", "action_ref": "ops.deploy", "concurrency": {"limit": 1}}' | attune policy create -f -`,
		Args: UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return UsageError{errors.New("-f is required: the policy file to create (see attune policy create --help)")}
			}
			data, err := readInput(streams, file)
			if err != nil {
				return fmt.Errorf("read policy: %w", err)
			}
			policy, err := decodeObject(data, "policy")
			if err == nil {
				// The keys are checked here, where yaml.v3 names the line of one misspelt; the
				// values are the server's to check, and an absent enabled its to default.
				err = decodeYAML(data, new(pack.Policy), true)
			}
			if err != nil {
				return fmt.Errorf("read policy %s: %w", file, err)
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			created, err := client.post(cmd.Context(), "/api/v1/policies", policy)
			if err != nil {
				return fmt.Errorf("create policy from %s: %w", file, err)
			}
			return printObject(streams.Out, api.output, created)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy file, YAML or JSON, as in a pack's policies/ directory; - for stdin")
	return cmd
}
