package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/app/database"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/seal"
)

// rotateBatch is how many rows one transaction of a rotation rewrites: small, so that the
// rows it locks hold up the running processes only briefly.
const rotateBatch = 100

// newKeyRotateCommand is "attune key rotate": it re-seals, in the database itself, every
// value sealed under a key other than the current one. It lives here, not in app/cli,
// because it reaches the database and builds the keyring as serve does.
func newKeyRotateCommand(streams Streams) *cobra.Command {
	var db database.Flags
	var keys keyringConfig
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt every secret value under the current encryption key (in the database, without the API)",
		Long: `Re-encrypts every secret value held under an older encryption key (or the key Attune
generated) with the current one, in the database itself (--database-url or
ATTUNE_DATABASE_URL): the datastore's secret keys, executions' parameters and results,
enforcements' configs, rules' action parameters, and workflows' variables, items and
results. The keys are configured as for serve: ATTUNE_ENCRYPTION_KEY (the current one) and
ATTUNE_ENCRYPTION_OLD_KEYS, or --encryption-key-file (first line current).

It works in small transactions while Attune runs, so restart every process with the new key
current and the old one among the older keys first. It is safe to run again, and to run after
an interruption: a value already under the current key is left as it is. When a value needs a
key that is not configured it changes nothing (exit 1, naming the key id); when such a value
appears while it runs, it stops there and leaves the rest as it was. See docs/datastore.md.`,
		Example: `  ATTUNE_ENCRYPTION_KEY=$(cat new.key) ATTUNE_ENCRYPTION_OLD_KEYS=$(cat old.key) attune key rotate`,
		Args:    cli.UsageArgs(cobra.NoArgs),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range apiOnly {
				if cmd.Flags().Changed(name) {
					return cli.Usagef("--%s does not apply: key rotate changes the database itself (--database-url), not through the API", name)
				}
			}
			if err := cli.ApplyEnv(cmd.Flags()); err != nil {
				return cli.Usage(err)
			}
			if _, err := keys.configuredKeys(); err != nil {
				return cli.Usage(err)
			}
			if _, err := store.ParseURL(db.URL); err != nil {
				return cli.Usagef("--database-url: %w", err)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			logger := slog.New(slog.NewTextHandler(streams.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
			pool, err := database.OpenExisting(ctx, db.URL, logger)
			if err != nil {
				return err
			}
			defer pool.Close()
			st := store.NewStore(pool)
			keyring, err := openKeyring(ctx, st, keys, logger)
			if err != nil {
				return err
			}
			return rotate(ctx, st, keyring, streams)
		},
	}
	db.Register(cmd.Flags())
	cmd.Flags().Lookup("database-url").Usage = "PostgreSQL URL of Attune's database, which must exist (env ATTUNE_DATABASE_URL)"
	registerKeyringFlags(cmd.Flags(), &keys)
	// The key group's API flags, shadowed here so that they are neither listed nor quietly
	// ignored.
	cmd.Flags().String(apiOnly[0], "", "")
	cmd.Flags().StringP(apiOnly[1], "o", "", "")
	for _, name := range apiOnly {
		_ = cmd.Flags().MarkHidden(name)
	}
	return cmd
}

// rotate checks that keyring opens every token in the database, then re-seals under its
// current key, column by column, each token under another key, printing the counts.
func rotate(ctx context.Context, st *store.Store, keyring *seal.Keyring, streams Streams) error {
	if err := requireKeys(ctx, st, keyring, store.SealedColumns, "nothing was changed"); err != nil {
		return err
	}
	total := 0
	for _, c := range store.SealedColumns {
		changed := 0
		var after []int64
		reseal := keyring.ResealSynthetic
		if c.Random {
			reseal = keyring.Reseal
		}
		for {
			last, n, err := st.ResealBatch(ctx, c, after, rotateBatch, reseal)
			changed += n
			if err != nil {
				fmt.Fprintf(streams.Out, "%s: %d re-encrypted before the error\n", c, changed)
				return fmt.Errorf("rotate: %w; the rows not reached yet are as they were, and running it again resumes", err)
			}
			if last == nil {
				break
			}
			after = last
		}
		total += changed
		fmt.Fprintf(streams.Out, "%s: %d re-encrypted\n", c, changed)
	}
	fmt.Fprintf(streams.Out, "every secret value is under key %s (%d re-encrypted)\n", keyring.CurrentID(), total)
	if total == 0 {
		return nil
	}
	// Once every value is under the new key: the rotation spans many transactions.
	if err := st.AuditRecord(store.WithActor(ctx, store.CLI), "key.rotate", "encryption_key", keyring.CurrentID(),
		map[string]any{"reencrypted": total}); err != nil {
		return fmt.Errorf("rotate: every value is re-encrypted, but recording it in the audit failed: %w", err)
	}
	return nil
}

// requireKeys fails, naming the key ids and where they seal values, when a token in columns
// was sealed under a key keyring lacks; then is what the error adds about the outcome.
func requireKeys(ctx context.Context, st *store.Store, keyring *seal.Keyring, columns []store.SealedColumn, then string) error {
	missing := map[string][]string{}
	var ids []string
	for _, c := range columns {
		found, err := st.SealedKeyIDs(ctx, c)
		if err != nil {
			return err
		}
		for _, id := range found {
			if keyring.Has(id) {
				continue
			}
			if _, ok := missing[id]; !ok {
				ids = append(ids, id)
			}
			missing[id] = append(missing[id], c.String())
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("key id %s (in %s)", id, strings.Join(missing[id], ", "))
	}
	return fmt.Errorf("secret values are sealed under encryption keys this process does not have: %s; "+
		"configure each as an older key (ATTUNE_ENCRYPTION_OLD_KEYS, or a later line of --encryption-key-file); %s",
		strings.Join(parts, "; "), then)
}
