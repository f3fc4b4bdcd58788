package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

var keyColumns = []column{{"SCOPE", "scope", 0}, {"NAME", "name", 0}, {"SECRET", "secret", 0}, {"VALUE", "value", 50}, {"EXPIRES", "expires", 0}}

const keysPath = "/api/v1/keys"

func keyPath(scope, name string) string {
	return keysPath + "/" + url.PathEscape(scope) + "/" + url.PathEscape(name)
}

// newKeyCommand is "attune key": the datastore through the API, with "attune key rotate"
// (which works on the database, like "migrate") added by the caller.
func newKeyCommand(streams Streams) *cobra.Command {
	var api apiFlags
	cmd := newNounCommand("key", "Set, read, list and delete the datastore's keys", &api)
	cmd.Long = `The datastore keeps values under a scope: system, pack.<pack ref>, or user (your own).
Rules, workflows and actions read them; a secret value is encrypted at rest and shows as
******** unless an admin (or a user key's owner) asks for it with --decrypt. See
docs/datastore.md.`
	list := newListCommand(streams, &api, listCommand{noun: "the keys you may read (secret values as ********)", path: keysPath,
		columns: keyColumns, all: true, filters: []queryFlag{
			{"scope", "scope", "only the keys of this scope: system, user or pack.<pack ref>"},
			{"prefix", "prefix", "only the keys whose name starts with this"}}})
	cmd.AddCommand(newKeySetCommand(streams, &api), newKeyGetCommand(streams, &api), list,
		&cobra.Command{
			Use:   "delete SCOPE NAME",
			Short: "Delete a key",
			Args:  UsageArgs(cobra.ExactArgs(2)),
			RunE: func(cmd *cobra.Command, args []string) error {
				client, err := api.client()
				if err != nil {
					return err
				}
				if err := client.delete(cmd.Context(), keyPath(args[0], args[1])); err != nil {
					return err
				}
				_, err = fmt.Fprintf(streams.Out, "deleted key %s %s\n", args[0], args[1])
				return err
			},
		})
	return cmd
}

func newKeyGetCommand(streams Streams, api *apiFlags) *cobra.Command {
	var decrypt bool
	cmd := &cobra.Command{
		Use:   "get SCOPE NAME",
		Short: "Show a key; a secret value as ******** unless --decrypt",
		Long: `Shows a key. A secret value shows as ******** unless --decrypt is given, which only an
admin (any scope) and the owner of a user key may do; the server logs every decrypt.`,
		Example: `  attune key get system api_url
  attune key get pack.deploy token --decrypt -o json | jq -r .value`,
		Args: UsageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if decrypt {
				q.Set("decrypt", "true")
			}
			env, err := client.call(cmd.Context(), http.MethodGet, keyPath(args[0], args[1]), q, nil)
			if err != nil {
				return withStatus(err)
			}
			return printObject(streams.Out, api.output, env.Data)
		},
	}
	cmd.Flags().BoolVar(&decrypt, "decrypt", false, "show a secret value in clear (admins, and owners of user keys)")
	return cmd
}

// keySetFlags are the flags of "attune key set".
type keySetFlags struct {
	valueFile string
	secret    bool
	ttl       time.Duration
	json      bool
}

func newKeySetCommand(streams Streams, api *apiFlags) *cobra.Command {
	var f keySetFlags
	cmd := &cobra.Command{
		Use:   "set SCOPE NAME [VALUE | -]",
		Short: "Set a key, replacing any value it had",
		Long: `Sets key NAME of SCOPE (system, pack.<pack ref>, or user: your own). The value is the
argument VALUE, or stdin with "-", or a file with --value-file FILE ("-" for stdin). It is
text, stored as a JSON string (one trailing newline dropped), unless --json says it is a JSON
value (an object, a number, ...).

--secret encrypts the value at rest and shows it as ******** to everyone but admins and the
owner of a user key who ask with "key get --decrypt". Give a secret on stdin or in a file:
an argument shows in ps and in the shell's history.

--ttl removes the key that long after the write (90s, 30m, 12h); a write without --ttl keeps
the key until it is deleted.`,
		Example: `  attune key set system api_url https://example.com
  attune key set pack.deploy replicas 3 --json
  attune key set pack.deploy token --secret --value-file - < token.txt
  attune key set user session - --secret --ttl 1h`,
		Args: UsageArgs(cobra.RangeArgs(2, 3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := f.value(streams, args[2:])
			if err != nil {
				return err
			}
			body := map[string]any{"value": value, "secret": f.secret}
			if f.ttl < 0 || (f.ttl == 0 && cmd.Flags().Changed("ttl")) {
				return Usagef("--ttl: want a positive duration such as 90s, 30m or 12h")
			}
			if f.ttl > 0 {
				body["ttl"] = f.ttl.String()
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			data, err := client.put(cmd.Context(), keyPath(args[0], args[1]), body)
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
	cmd.Flags().StringVar(&f.valueFile, "value-file", "", `read the value from this file ("-" for stdin)`)
	cmd.Flags().BoolVar(&f.secret, "secret", false, "encrypt the value at rest and mask it in every answer")
	cmd.Flags().DurationVar(&f.ttl, "ttl", 0, "remove the key this long after the write (90s, 30m, 12h)")
	cmd.Flags().BoolVar(&f.json, "json", false, "the value is JSON (default: text, stored as a JSON string)")
	return cmd
}

// value reads the key's value from the argument, stdin or --value-file, and makes it JSON.
// Errors never quote the value, which may be a secret.
func (f keySetFlags) value(streams Streams, args []string) (json.RawMessage, error) {
	var text string
	switch {
	case len(args) == 1 && f.valueFile != "":
		return nil, Usagef("give the value as an argument or with --value-file, not both")
	case len(args) == 0 && f.valueFile == "":
		return nil, Usagef(`no value: give it as an argument, "-" for stdin, or --value-file FILE`)
	case f.valueFile != "" || args[0] == "-":
		b, err := readInput(streams, cmp.Or(f.valueFile, "-"))
		if err != nil {
			return nil, Usage(fmt.Errorf("the value: %w", err))
		}
		text = string(b)
	default:
		text = args[0]
		if f.secret {
			fmt.Fprintln(streams.Err, "warning: a secret given as an argument shows in ps and in the shell's history; prefer --value-file - (stdin)")
		}
	}
	if f.json {
		if !json.Valid([]byte(text)) {
			return nil, Usagef("--json: the value is not valid JSON")
		}
		return json.RawMessage(text), nil
	}
	text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
	b, err := json.Marshal(text)
	if err != nil {
		return nil, fmt.Errorf("encode the value: %w", err)
	}
	return b, nil
}
