package cli

import "github.com/spf13/cobra"

var auditColumns = []column{{"ID", "id", 0}, {"CREATED", "created", 0}, {"ACTOR", "actor", 0}, {"TOKEN", "token", 0},
	{"KIND", "kind", 0}, {"OBJECT", "object", 0}, {"DETAIL", "detail", 60}}

// newAuditCommand reads the audit: who changed what, and when (admins only).
func newAuditCommand(streams Streams) *cobra.Command {
	var api apiFlags
	cmd := newNounCommand("audit", "Read who changed what, and when (admins only)", &api)
	list := newListCommand(streams, &api, listCommand{noun: "the latest audit entries, newest first", path: "/api/v1/audit",
		columns: auditColumns, recent: true, filters: []queryFlag{
			{"actor", "actor", "only what this login did (or system, cli, anonymous, execution:ID, sensor:REF)"},
			{"kind", "kind", "only entries of this kind (rule.update) or noun (rule: every rule.* kind)"},
			{"object", "object", "only entries about this object: KIND or KIND:REF (rule:demo.every_second, execution:42)"},
		}})
	list.Long = `Lists the audit's entries, newest first: every execution requested, rerun, cancelled, paused
or resumed through the API, and every change of a pack, action, trigger, sensor, rule, policy,
key, identity, API token or webhook secret, with who made it (the login, and the API token's
name when the request came with one; system for what serve did by itself, cli for attune key
rotate and attune identity reset-password), when, and what changed. No entry holds a secret
value. -o json gives every field.`
	list.Example = `  attune audit list --since 1h
  attune audit list --actor alice --kind rule
  attune audit list --object execution:42 -o json`
	cmd.AddCommand(list)
	return cmd
}
