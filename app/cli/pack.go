package cli

import (
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newPackCommand(streams Streams) *cobra.Command {
	var api apiFlags
	cmd := &cobra.Command{
		Use:   "pack",
		Short: "Manage packs through the API",
		Long: `Packs bundle actions, triggers, sensors, rules and policies. These commands ask a running
Attune API (a process with the api role) to act on them.`,
	}
	api.register(cmd.PersistentFlags())
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := ApplyEnv(cmd.Flags()); err != nil {
			return UsageError{err}
		}
		return nil
	}
	// -o belongs to the commands that print an answer, not to delete.
	register := newPackRegisterCommand(streams, &api)
	upload := newPackUploadCommand(streams, &api)
	install := newPackInstallCommand(streams, &api)
	list := newListCommand(streams, &api, listCommand{noun: "packs", path: "/api/v1/packs", columns: packColumns, all: true})
	show := newShowCommandPrinting(streams, &api, "pack, with its versions", "/api/v1/packs", printPackShow)
	for _, c := range []*cobra.Command{register, upload, install, list, show} {
		api.registerOutput(c.Flags())
	}
	cmd.AddCommand(register, upload, install, list, show, newPackDeleteCommand(streams, &api))
	return cmd
}

func newPackDeleteCommand(streams Streams, api *apiFlags) *cobra.Command {
	return newDeleteCommand(streams, api, deleteCommand{noun: "pack", key: "REF", path: "/api/v1/packs",
		short: "Delete a pack and everything in it",
		long: `Deletes the pack REF through the API, with its actions, triggers, sensors, rules and policies,
and the policies that name its actions. Events, enforcements and executions stay. The server
refuses while a rule or sensor of another pack uses one of its actions or triggers, and for
the built-in core pack. A pack under a server's --packs-dir comes back when it starts again.`})
}

func newPackRegisterCommand(streams Streams, api *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "register DIR",
		Short: "Register the pack in DIR, or update it if it is registered",
		Long: `Registers the pack in directory DIR through the API: the server loads and validates the whole
pack and writes it whole, so a broken pack is refused whole with the file and
field at fault, and nothing of it is written. Registering again updates the pack.

It prints what changed: for each kind of component the refs added, updated and removed and
how many were left as they were, and the rules enabled or disabled again because the pack's
files say so (a rule disabled with "attune rule disable" is enabled again by registering its
pack, if its file enables it). Registering the same pack again changes nothing. With -o json
or -o yaml it prints the pack with those changes under "changes".

The server reads DIR from its own disk: DIR is made absolute here and must name the same
directory on the server, so this command and the server must share a filesystem (the same
machine, or the same mount). The server stores the pack's files as a version, which workers
fetch into their own cache; "attune pack upload" sends the files instead.`,
		Example: `  attune pack register ./packs/demo
  attune pack register --api-url=http://attune-api:8080 /srv/attune/packs/demo
  ATTUNE_API_URL=http://attune-api:8080 attune pack register /srv/attune/packs/demo`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return fmt.Errorf("register pack %s: %w", args[0], err)
			}
			env, err := client.call(cmd.Context(), http.MethodPost, "/api/v1/packs/register", nil, map[string]string{"path": dir})
			if err != nil {
				// The API's message names the pack directory, the file and the field already.
				return err
			}
			_, err = printRegistered(streams, api.output, env.Data, "register", dir)
			return err
		},
	}
}
