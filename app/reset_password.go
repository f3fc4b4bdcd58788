package app

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/app/database"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
)

// apiOnly are the flags of the identity group that reset-password, which reaches no API, refuses.
var apiOnly = []string{"api-url", "output"}

// newResetPasswordCommand is "attune identity reset-password": it sets a password in the
// database itself, for when nobody who may change passwords through the API can log in. It
// lives here, not in app/cli, because it reaches the database rather than the API.
func newResetPasswordCommand(streams Streams) *cobra.Command {
	var db database.Flags
	var passwordStdin, generate bool
	cmd := &cobra.Command{
		Use:   "reset-password LOGIN [--password-stdin | --generate]",
		Short: "Set an identity's password in the database, without the API (a lost admin password)",
		Long: `Sets LOGIN's password in the database directly, as "attune migrate" reaches it (--database-url or
ATTUNE_DATABASE_URL), for when nobody who may change it through the API can log in. The new
password is asked twice on the terminal, read from stdin's first line with --password-stdin,
or made up and printed once with --generate. The sessions the identity had end at once (its
access and refresh tokens); its API tokens stay, to be revoked with "attune token revoke".`,
		Example: `  attune identity reset-password admin --database-url postgres://attune@db:5432/attune
  ATTUNE_DATABASE_URL=postgres://attune@db:5432/attune attune identity reset-password admin --generate`,
		Args: cli.UsageArgs(cobra.ExactArgs(1)),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range apiOnly {
				if cmd.Flags().Changed(name) {
					return cli.Usagef("--%s does not apply: reset-password changes the database itself (--database-url), not through the API", name)
				}
			}
			if err := cli.ApplyEnv(cmd.Flags()); err != nil {
				return cli.Usage(err)
			}
			if passwordStdin && generate {
				return cli.Usagef("give --password-stdin or --generate, not both")
			}
			if _, err := store.ParseURL(db.URL); err != nil {
				return cli.Usagef("--database-url: %w", err)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			login := args[0]
			ctx := cmd.Context()
			pool, err := database.OpenExisting(ctx, db.URL, slog.New(slog.NewTextHandler(streams.Err, &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err != nil {
				return err
			}
			defer pool.Close()
			st := store.NewStore(pool)
			// Before asking for a password, so that a mistyped login costs no typing.
			if _, err := st.IdentityGetByLogin(ctx, login); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("reset the password of %s: no identity %q in this database", login, login)
			} else if err != nil {
				return fmt.Errorf("reset the password of %s: %w", login, err)
			}
			password, err := newPassword(streams, login, passwordStdin, generate)
			if err != nil {
				return err
			}
			hash, err := api.HashNewPassword(password)
			if err != nil {
				return cli.Usage(err)
			}
			if _, err := st.IdentityUpdate(store.WithActor(ctx, store.CLI), login, hash, ""); err != nil {
				return fmt.Errorf("reset the password of %s: %w", login, err)
			}
			fmt.Fprintf(streams.Out, "reset the password of %s; the sessions it had have ended\n", login)
			if generate {
				fmt.Fprintf(streams.Out, "new password (shown this once): %s\n", password)
			}
			return nil
		},
	}
	db.Register(cmd.Flags())
	cmd.Flags().Lookup("database-url").Usage = "PostgreSQL URL of Attune's database, which must exist (env ATTUNE_DATABASE_URL)"
	// The identity group's API flags, shadowed here so that they are neither listed nor
	// quietly ignored.
	cmd.Flags().String(apiOnly[0], "", "")
	cmd.Flags().StringP(apiOnly[1], "o", "", "")
	for _, name := range apiOnly {
		_ = cmd.Flags().MarkHidden(name)
	}
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the new password from the first line of stdin")
	cmd.Flags().BoolVar(&generate, "generate", false, "make up a password and print it, once")
	return cmd
}

// newPassword is the password to set: made up, read from stdin, or typed twice on the
// terminal, the two alike.
func newPassword(streams Streams, login string, fromStdin, generate bool) (string, error) {
	if generate {
		return api.GeneratePassword()
	}
	prompts := []string{"New password for " + login + ": "}
	if !fromStdin {
		prompts = append(prompts, "Again: ")
	}
	secrets, err := cli.ReadSecrets(streams, fromStdin, prompts...)
	if err != nil {
		return "", err
	}
	if len(secrets) == 2 && secrets[0] != secrets[1] {
		return "", cli.Usagef("the two passwords typed differ; nothing was changed")
	}
	return secrets[0], nil
}
