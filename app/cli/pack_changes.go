package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/attune-go/attune/store"
)

// writePackChanges says what registering a pack changed, for a person: a first line with the
// pack and whether it is new, updated or unchanged, then a line per kind of component it
// holds or held, and the rules whose enabled state the pack's files restored.
func writePackChanges(w io.Writer, r store.RegisteredPack) error {
	c := r.Changes
	kinds := []struct {
		name    string
		changes store.ComponentChanges
	}{
		{"action", c.Actions}, {"trigger", c.Triggers}, {"sensor", c.Sensors}, {"rule", c.Rules}, {"policy", c.Policies},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "registered pack %s (%s)", r.Ref, r.Path)
	if c.Pack == "" {
		// A server from before registration said what it changed.
		b.WriteString("\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString(": ")
	switch {
	case c.Pack == store.PackAdded:
		b.WriteString("new\n")
	case c.Changed():
		b.WriteString("updated\n")
	default:
		// Nothing to list: how much the pack holds is enough.
		var held []string
		for _, k := range kinds {
			if k.changes.Unchanged > 0 {
				held = append(held, count(k.changes.Unchanged, k.name))
			}
		}
		b.WriteString("nothing changed")
		if len(held) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(held, ", "))
		}
		b.WriteString("\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	for _, k := range kinds {
		var parts []string
		for _, p := range []struct {
			verb string
			refs []string
		}{{"added", k.changes.Added}, {"updated", k.changes.Updated}, {"removed", k.changes.Removed}} {
			if len(p.refs) > 0 {
				parts = append(parts, p.verb+" "+strings.Join(p.refs, ", "))
			}
		}
		if k.changes.Unchanged > 0 {
			parts = append(parts, fmt.Sprintf("%d unchanged", k.changes.Unchanged))
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "  %s: %s\n", plural(k.name), strings.Join(parts, "; "))
		}
	}
	if len(c.RulesReenabled) > 0 {
		fmt.Fprintf(&b, "  rules enabled again, as their files say: %s\n", strings.Join(c.RulesReenabled, ", "))
	}
	if len(c.RulesDisabled) > 0 {
		fmt.Fprintf(&b, "  rules disabled again, as their files say: %s\n", strings.Join(c.RulesDisabled, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// count is "1 action" or "3 actions".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %s", n, plural(noun))
}

func plural(noun string) string {
	if noun == "policy" {
		return "policies"
	}
	return noun + "s"
}

// printRegistered prints the API's answer to registering or uploading (what) the pack at
// where: as it came for JSON and YAML, else what changed, the pack named by where when the
// server has no path for it. It returns the pack it decoded, for a table.
func printRegistered(streams Streams, output outputFormat, data json.RawMessage, what, where string) (store.RegisteredPack, error) {
	var registered store.RegisteredPack
	if output != outputTable {
		return registered, printObject(streams.Out, output, data)
	}
	if err := json.Unmarshal(data, &registered); err != nil {
		return registered, fmt.Errorf("decode answer of %s pack %s: %w", what, where, err)
	}
	if registered.Path == "" {
		registered.Path = where
	}
	return registered, writePackChanges(streams.Out, registered)
}
