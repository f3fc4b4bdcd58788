package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/modules/pack"
)

// takeField returns fields without the one called name, and that one's value (nil when
// there is none).
func takeField(fields []field, name string) ([]field, json.RawMessage) {
	rest := fields[:0:0]
	var value json.RawMessage
	for _, f := range fields {
		if f.name == name {
			value = f.value
			continue
		}
		rest = append(rest, f)
	}
	return rest, value
}

// printAction prints one action; as a table, its parameters follow as a table of their own,
// a row each, instead of one line of JSON.
func printAction(w io.Writer, format outputFormat, data json.RawMessage) error {
	if format != outputTable {
		return printObject(w, format, data)
	}
	fields, err := orderedFields(data)
	if err != nil {
		return err
	}
	shown, raw := takeField(fields, "parameters")
	var schema pack.Schema
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &schema); err != nil {
			return fmt.Errorf("decode parameters: %w", err)
		}
	}
	if err := printFields(w, shown); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return printParams(w, "", schema)
}

// printParams writes a parameter schema as a table, a parameter a row in name order, each
// line after indent. Secret defaults show as the mask, whatever the API sent, and so do
// secret enums, by leaving them out.
func printParams(w io.Writer, indent string, schema pack.Schema) error {
	if len(schema) == 0 {
		_, err := fmt.Fprintln(w, indent+"no parameters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"PARAMETER\tTYPE\tREQUIRED\tDEFAULT\tDESCRIPTION")
	for _, name := range slices.Sorted(maps.Keys(schema)) {
		p := schema[name]
		typ, required, def := p.Type, "no", ""
		if p.Secret {
			typ += ", secret"
		}
		if p.Required {
			required = "yes"
		}
		switch {
		case p.Default != nil && p.Secret:
			def = pack.Mask
		case p.Default != nil:
			def = jsonCell(p.Default)
		}
		description := strings.Join(strings.Fields(p.Description), " ")
		if len(p.Enum) > 0 && !p.Secret {
			values := make([]string, len(p.Enum))
			for i, e := range p.Enum {
				values[i] = jsonCell(e)
			}
			description = strings.TrimSpace(description + " (one of " + strings.Join(values, ", ") + ")")
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", indent, name, typ, required, def, description)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// jsonCell renders a decoded JSON value as a table cell.
func jsonCell(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return cell(b, 40)
}

// helpWithParams is the help of action execute: the usual help, then, when a REF was given
// and the API answers, the parameters of that action. An API that cannot be reached adds
// nothing: help must not fail.
func helpWithParams(api *apiFlags) func(*cobra.Command, []string) {
	return func(cmd *cobra.Command, args []string) {
		cmd.Parent().HelpFunc()(cmd, args)
		refs := cmd.Flags().Args()
		client := api.lookupClient()
		if len(refs) == 0 || client == nil {
			return
		}
		ctx, cancel := context.WithTimeout(commandContext(cmd), lookupTimeout)
		defer cancel()
		w := cmd.OutOrStdout()
		schema, err := actionSchema(ctx, client, refs[0])
		var refused *apiError
		switch {
		case errors.As(err, &refused):
			fmt.Fprintf(w, "\nParameters of %s: not known, the API says: %v\n", refs[0], err)
		case err == nil:
			fmt.Fprintf(w, "\nParameters of %s:\n", refs[0])
			_ = printParams(w, "  ", schema)
		}
	}
}

// splitOutput takes the standard output and error out of an execution's result, so that they
// can be printed as the lines they are; the rest of the result stays in its order. A result of
// another shape is left whole.
func splitOutput(result json.RawMessage) (rest json.RawMessage, stdout, stderr string) {
	var output struct {
		Stdout string `json:"stdout"`
		Stderr string `json:"stderr"`
	}
	fields, err := orderedFields(result)
	if err != nil || json.Unmarshal(result, &output) != nil {
		return result, "", ""
	}
	fields, _ = takeField(fields, "stdout")
	fields, _ = takeField(fields, "stderr")
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(f.name)
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(f.value)
	}
	buf.WriteByte('}')
	return buf.Bytes(), output.Stdout, output.Stderr
}

// printOutput writes an execution's output under its heading, as lines; nothing when empty.
func printOutput(w io.Writer, heading, output string) {
	if output == "" {
		return
	}
	fmt.Fprintf(w, "\n%s\n%s", heading, withNewline(output))
}
