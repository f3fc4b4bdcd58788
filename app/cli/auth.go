package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

var (
	identityColumns = []column{{"LOGIN", "login", 0}, {"ROLE", "role", 0}, {"CREATED", "created", 0}}
	tokenColumns    = []column{{"ID", "id", 0}, {"NAME", "name", 30}, {"LOGIN", "login", 0}, {"ROLE", "role", 0}, {"PREFIX", "prefix", 0},
		{"EXPIRES", "expires_at", 0}, {"REVOKED", "revoked_at", 0}}
)

// ReadSecrets reads one password per prompt: a line each from stdin with --password-stdin
// (for scripts), else from the terminal without echo. Without either it refuses rather than
// hang.
func ReadSecrets(streams Streams, fromStdin bool, prompts ...string) ([]string, error) {
	if streams.In == nil {
		return nil, errors.New("no input to read the password from")
	}
	out := make([]string, 0, len(prompts))
	if fromStdin {
		r := bufio.NewReader(streams.In)
		for range prompts {
			line, err := r.ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read password from stdin: %w", err)
			}
			ended := errors.Is(err, io.EOF) && line == ""
			line = strings.TrimRight(line, "\r\n")
			switch {
			case ended && len(out) == 0:
				return nil, UsageError{errors.New("--password-stdin: stdin is empty")}
			case ended:
				return nil, UsageError{fmt.Errorf("--password-stdin: stdin ended after %d of the %d lines wanted", len(out), len(prompts))}
			case line == "":
				return nil, UsageError{fmt.Errorf("--password-stdin: the password on line %d of stdin is empty", len(out)+1)}
			}
			out = append(out, line)
		}
		return out, nil
	}
	f, ok := streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, UsageError{errors.New("no terminal to ask for the password on; pipe it in with --password-stdin")}
	}
	for _, prompt := range prompts {
		fmt.Fprint(streams.Err, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(streams.Err)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		out = append(out, string(b))
	}
	return out, nil
}

// readSecret is ReadSecrets for one password.
func readSecret(streams Streams, prompt string, fromStdin bool) (string, error) {
	secrets, err := ReadSecrets(streams, fromStdin, prompt)
	if err != nil {
		return "", err
	}
	return secrets[0], nil
}

func newLoginCommand(streams Streams) *cobra.Command {
	api := apiFlags{writesConfig: true}
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login LOGIN",
		Short: "Log in to the API and keep the tokens in the config file",
		Long: `Logs in as LOGIN and writes the access and refresh tokens (and --api-url, when given) to the
config file, ~/.config/attune/config.yaml or $ATTUNE_CONFIG, readable by you alone. Later
commands send the access token and renew it with the refresh token when it expires.`,
		Example: `  attune login admin
  echo "$PASSWORD" | attune login admin --password-stdin --api-url https://attune.example.com`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			password, err := readSecret(streams, "Password for "+args[0]+": ", passwordStdin)
			if err != nil {
				return err
			}
			pair, err := client.login(cmd.Context(), args[0], password)
			if err != nil {
				return err
			}
			cfg, path, err := loadCLIConfig()
			if errors.Is(err, fs.ErrNotExist) {
				cfg, path, err = readCLIConfig(path, true)
			}
			if err != nil {
				return UsageError{err}
			}
			if api.urlFlag.Changed || os.Getenv("ATTUNE_API_URL") != "" {
				cfg.APIURL = client.baseURL.String()
			}
			cfg.Token, cfg.RefreshToken = pair.AccessToken, pair.RefreshToken
			if err := saveCLIConfig(path, cfg); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "logged in to %s as %s; tokens saved in %s\n", client.baseURL, args[0], path)
			return nil
		},
	}
	api.register(cmd.Flags())
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	return cmd
}

func newWhoamiCommand(streams Streams) *cobra.Command {
	var api apiFlags
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Say who the API takes you for, and your role",
		Args:  UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), "/api/v1/whoami")
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
	api.register(cmd.Flags())
	api.registerOutput(cmd.Flags())
	return cmd
}

func newIdentityCommand(streams Streams) *cobra.Command {
	var api apiFlags
	cmd := newNounCommand("identity", "Manage who may use the API (admins only)", &api)
	var create struct {
		role          string
		passwordStdin bool
	}
	createCmd := &cobra.Command{
		Use:   "create LOGIN --role admin|operator|viewer",
		Short: "Create an identity",
		Long: `Creates an identity with the password read from the terminal or, with --password-stdin,
from stdin. Roles: viewer reads; operator also runs, cancels and reruns executions and
manages rules; admin does everything.`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			if create.role == "" {
				return UsageError{errors.New("--role is required: admin, operator or viewer")}
			}
			password, err := readSecret(streams, "Password for "+args[0]+": ", create.passwordStdin)
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), "/api/v1/identities", map[string]string{"login": args[0], "password": password, "role": create.role})
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
	createCmd.Flags().StringVar(&create.role, "role", "", "admin, operator or viewer")
	createCmd.Flags().BoolVar(&create.passwordStdin, "password-stdin", false, "read the password from the first line of stdin")

	var update struct {
		role          string
		password      bool
		passwordStdin bool
	}
	updateCmd := &cobra.Command{
		Use:   "update LOGIN [--role ROLE] [--password | --password-stdin]",
		Short: "Change an identity's role or password (your own password needs no admin)",
		Long: `Changes LOGIN's role (admins only) or password. Changing your own password asks for the
current one first; with --password-stdin, stdin's first line is then the current password and
its second the new one.`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			body := map[string]string{}
			if update.role != "" {
				body["role"] = update.role
			}
			if update.password || update.passwordStdin {
				var me struct {
					Login string `json:"login"`
				}
				if err := client.do(cmd.Context(), http.MethodGet, "/api/v1/whoami", nil, &me); err != nil {
					return withStatus(err)
				}
				prompts := []string{"New password for " + args[0] + ": "}
				if me.Login == args[0] {
					prompts = []string{"Current password: ", "New password: "}
				}
				secrets, err := ReadSecrets(streams, update.passwordStdin, prompts...)
				if err != nil {
					return err
				}
				body["password"] = secrets[len(secrets)-1]
				if len(secrets) == 2 {
					body["current_password"] = secrets[0]
				}
			}
			if len(body) == 0 {
				return UsageError{errors.New("nothing to change: give --role, --password or --password-stdin")}
			}
			data, err := client.put(cmd.Context(), "/api/v1/identities/"+url.PathEscape(args[0]), body)
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
	updateCmd.Flags().StringVar(&update.role, "role", "", "the new role: admin, operator or viewer")
	updateCmd.Flags().BoolVar(&update.password, "password", false, "ask for a new password on the terminal")
	updateCmd.Flags().BoolVar(&update.passwordStdin, "password-stdin", false, "read the new password from stdin (your own: the current password, then the new one, a line each)")

	cmd.AddCommand(createCmd, updateCmd,
		newListCommand(streams, &api, listCommand{noun: "identities", path: "/api/v1/identities", columns: identityColumns, all: true}),
		newShowCommand(streams, &api, "identity", "/api/v1/identities"),
		newDeleteCommand(streams, &api, deleteCommand{noun: "identity", key: "LOGIN", path: "/api/v1/identities",
			short: "Delete an identity and its API tokens; its sessions end at once"}))
	return cmd
}

func newTokenCommand(streams Streams) *cobra.Command {
	var api apiFlags
	cmd := newNounCommand("token", "Manage API tokens for automation", &api)
	var create struct {
		name, role string
		expires    time.Duration
	}
	createCmd := &cobra.Command{
		Use:   "create",
		Short: "Create an API token; its secret is printed this once",
		Example: `  attune token create --name ci --role operator --expires 720h
  export ATTUNE_TOKEN=$(attune token create --name ci -o json | jq -r .token)`,
		Args: UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			body := map[string]any{"name": create.name}
			if create.role != "" {
				body["role"] = create.role
			}
			if create.expires < 0 {
				return UsageError{fmt.Errorf("invalid --expires %s: want a positive duration", create.expires)}
			}
			if create.expires > 0 {
				body["expires_at"] = time.Now().Add(create.expires).UTC().Format(time.RFC3339)
			}
			data, err := client.post(cmd.Context(), "/api/v1/tokens", body)
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
	createCmd.Flags().StringVar(&create.name, "name", "", "what the token is for")
	createCmd.Flags().StringVar(&create.role, "role", "", "act with this smaller role than your own: operator or viewer")
	createCmd.Flags().DurationVar(&create.expires, "expires", 0, "expire after this long (e.g. 720h); 0 never expires")

	var all bool
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List your API tokens (--all: everyone's, for admins)",
		Args:  UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if all {
				q.Set("all", "true")
			}
			items, err := client.list(cmd.Context(), "/api/v1/tokens", q, true)
			if err != nil {
				return err
			}
			return printList(streams.Out, api.output, items, tokenColumns)
		},
	}
	listCmd.Flags().BoolVar(&all, "all", false, "every identity's tokens (admins only)")

	revokeCmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token at once",
		Args:  UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			data, err := client.send(cmd.Context(), http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
	cmd.AddCommand(createCmd, listCmd, revokeCmd)
	return cmd
}
