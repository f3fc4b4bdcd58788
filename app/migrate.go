package app

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/app/database"
	"github.com/attune-go/attune/migrations"
)

func newMigrateCommand(streams Streams) *cobra.Command {
	var db database.Flags
	var logs logOptions
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or list database migrations",
		Long: `Migrations are embedded in the binary. "attune serve" applies pending ones at start
unless --migrate=false; this command runs them by hand. Concurrent runs are safe: they take a
PostgreSQL advisory lock.`,
	}
	db.Register(cmd.PersistentFlags())
	registerLogFlags(cmd.PersistentFlags(), &logs)
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return cli.ApplyEnv(cmd.Flags())
	}

	run := func(fn func(cmd *cobra.Command, m *migrations.Migrator) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logs, streams.Err)
			if err != nil {
				return cli.Usage(err)
			}
			pool, err := database.Open(cmd.Context(), db.URL, logger)
			if err != nil {
				return err
			}
			defer pool.Close()
			return database.WithMigrator(pool, logger, func(m *migrations.Migrator) error { return fn(cmd, m) })
		}
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, m *migrations.Migrator) error {
			applied, err := m.Up(cmd.Context())
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(streams.Out, "no pending migrations")
			}
			for _, v := range applied {
				fmt.Fprintf(streams.Out, "applied %05d\n", v)
			}
			return nil
		}),
	}, &cobra.Command{
		Use:   "down",
		Short: "Roll back the most recent migration",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, m *migrations.Migrator) error {
			v, err := m.Down(cmd.Context())
			if err != nil {
				return err
			}
			if v == 0 {
				fmt.Fprintln(streams.Out, "no migration to roll back")
				return nil
			}
			fmt.Fprintf(streams.Out, "rolled back %05d\n", v)
			return nil
		}),
	}, &cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, m *migrations.Migrator) error {
			st, err := m.Status(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tNAME\tSTATE\tAPPLIED AT")
			for _, s := range st {
				state := "pending"
				if s.Applied {
					state = "applied"
				}
				fmt.Fprintf(w, "%05d\t%s\t%s\t%s\n", s.Version, s.Name, state, s.AppliedAt)
			}
			return w.Flush()
		}),
	})
	return cmd
}
