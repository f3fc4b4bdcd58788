package store

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RegisteredPack is a pack as registering it left it, with what registering changed.
type RegisteredPack struct {
	Pack
	Changes PackChanges `json:"changes"`
}

// What registering did to the pack's own row (PackChanges.Pack).
const (
	PackAdded     = "added"
	PackUpdated   = "updated"
	PackUnchanged = "unchanged"
)

// PackChanges is what registering a pack changed: its own row (PackAdded, PackUpdated or
// PackUnchanged) and its components by kind. Registering a pack again unchanged changes
// nothing.
type PackChanges struct {
	Pack     string           `json:"pack"`
	Actions  ComponentChanges `json:"actions"`
	Triggers ComponentChanges `json:"triggers"`
	Sensors  ComponentChanges `json:"sensors"`
	Rules    ComponentChanges `json:"rules"`
	Policies ComponentChanges `json:"policies"`
	// RulesReenabled were disabled (through the API, say) and are enabled again, as the
	// pack's files say; RulesDisabled the other way round. Registering restores what the files
	// say, which an operator who changed a rule by hand wants to hear.
	RulesReenabled []string `json:"rules_reenabled"`
	RulesDisabled  []string `json:"rules_disabled"`
}

// ComponentChanges are the refs of one kind of component that registering a pack added,
// updated (a setting differs) and removed, each in ref order, and how many it left as they
// were.
type ComponentChanges struct {
	Added     []string `json:"added"`
	Updated   []string `json:"updated"`
	Removed   []string `json:"removed"`
	Unchanged int      `json:"unchanged"`
}

// Changed reports whether registering changed anything at all.
func (c PackChanges) Changed() bool {
	if c.Pack != PackUnchanged {
		return true
	}
	for _, k := range []ComponentChanges{c.Actions, c.Triggers, c.Sensors, c.Rules, c.Policies} {
		if len(k.Added)+len(k.Updated)+len(k.Removed) > 0 {
			return true
		}
	}
	return false
}

// LogValue sums the changes up for a log line: the pack's own, and the components added,
// updated, removed and unchanged over every kind, with the rules whose state changed.
func (c PackChanges) LogValue() slog.Value {
	var added, updated, removed, unchanged int
	for _, k := range []ComponentChanges{c.Actions, c.Triggers, c.Sensors, c.Rules, c.Policies} {
		added, updated, removed, unchanged = added+len(k.Added), updated+len(k.Updated), removed+len(k.Removed), unchanged+k.Unchanged
	}
	attrs := []slog.Attr{slog.String("pack", c.Pack), slog.Int("added", added), slog.Int("updated", updated),
		slog.Int("removed", removed), slog.Int("unchanged", unchanged)}
	if len(c.RulesReenabled) > 0 {
		attrs = append(attrs, slog.Any("rules_reenabled", c.RulesReenabled))
	}
	if len(c.RulesDisabled) > 0 {
		attrs = append(attrs, slog.Any("rules_disabled", c.RulesDisabled))
	}
	return slog.GroupValue(attrs...)
}

func newPackChanges() PackChanges {
	empty := func() ComponentChanges {
		return ComponentChanges{Added: []string{}, Updated: []string{}, Removed: []string{}}
	}
	return PackChanges{Actions: empty(), Triggers: empty(), Sensors: empty(), Rules: empty(), Policies: empty(),
		RulesReenabled: []string{}, RulesDisabled: []string{}}
}

// sort puts every list in ref order, whatever order the pack's files came in.
func (c *PackChanges) sort() {
	for _, k := range []*ComponentChanges{&c.Actions, &c.Triggers, &c.Sensors, &c.Rules, &c.Policies} {
		slices.Sort(k.Added)
		slices.Sort(k.Updated)
		slices.Sort(k.Removed)
	}
	slices.Sort(c.RulesReenabled)
	slices.Sort(c.RulesDisabled)
}

// note files a component the registration upserted: written says whether the upsert wrote
// it, before holds the refs the pack had (with whether each was enabled).
func (k *ComponentChanges) note(before map[string]bool, ref string, written bool) {
	_, existed := before[ref]
	switch {
	case !written:
		k.Unchanged++
	case existed:
		k.Updated = append(k.Updated, ref)
	default:
		k.Added = append(k.Added, ref)
	}
}

// packComponents returns, by table, the refs of pack's components as they are now, each with
// whether it is enabled.
func (q *Queries) packComponents(ctx context.Context, pack int64) (map[string]map[string]bool, error) {
	type component struct {
		table, ref string
		enabled    bool
	}
	var selects []string
	for _, table := range []string{"action", "trigger", "sensor", "rule", "policy"} {
		selects = append(selects, `SELECT '`+table+`', ref, enabled FROM attune.`+table+` WHERE pack = $1`)
	}
	rows, err := queryAll(ctx, q.db, "read the pack's components", func(row pgx.Row) (component, error) {
		var c component
		return c, row.Scan(&c.table, &c.ref, &c.enabled)
	}, strings.Join(selects, " UNION ALL "), pack)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{"action": {}, "trigger": {}, "sensor": {}, "rule": {}, "policy": {}}
	for _, c := range rows {
		out[c.table][c.ref] = c.enabled
	}
	return out, nil
}

// onRefConflict is the ON CONFLICT clause of an upsert by ref into a table aliased cur. It
// sets cols from the row proposed only when one of them differs, so that registering a pack
// again leaves an unchanged component alone and the statement's row count says whether it
// changed.
func onRefConflict(cols ...string) string {
	set, was, now := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		set[i], was[i], now[i] = c+" = EXCLUDED."+c, "cur."+c, "EXCLUDED."+c
	}
	return "ON CONFLICT (ref) DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE (" + strings.Join(was, ", ") + ") IS DISTINCT FROM (" + strings.Join(now, ", ") + ")"
}
