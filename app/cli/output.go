package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"
)

// outputFormat is the value of -o/--output; as a pflag.Value it refuses a bad format while
// the flags are parsed, so that it is a usage error and no request is sent.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
	outputYAML  outputFormat = "yaml"
)

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "format" }

func (o *outputFormat) Set(v string) error {
	switch f := outputFormat(v); f {
	case outputTable, outputJSON, outputYAML:
		*o = f
		return nil
	}
	return fmt.Errorf("want table, json or yaml, not %q", v)
}

// column is one column of a list table: its header and the field of each object it shows.
type column struct {
	header string
	field  string
	// width truncates long text such as descriptions, so that one row stays one line; 0 for none.
	width int
}

// printList writes a list answer's items (each a JSON object) in format.
func printList(w io.Writer, format outputFormat, items []json.RawMessage, cols []column) error {
	if format != outputTable {
		if items == nil {
			// An empty list is [], not null, whatever the server sent.
			items = []json.RawMessage{}
		}
		b, err := json.Marshal(items)
		if err != nil {
			return fmt.Errorf("encode list: %w", err)
		}
		return printData(w, format, b)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, raw := range items {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return fmt.Errorf("decode list item: %w", err)
		}
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = cell(obj[c.field], c.width)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// printObject writes one object answer: a FIELD/VALUE listing in the API's field order for a
// table, the object itself otherwise.
func printObject(w io.Writer, format outputFormat, data json.RawMessage) error {
	if format != outputTable {
		return printData(w, format, data)
	}
	fields, err := orderedFields(data)
	if err != nil {
		return err
	}
	return printFields(w, fields)
}

// printFields writes fields as a FIELD VALUE table, in their order.
func printFields(w io.Writer, fields []field) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tVALUE")
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\n", f.name, cell(f.value, 0))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// printData writes any JSON value as indented JSON, or as YAML, or (for a table, where there is
// nothing to tabulate) as JSON.
func printData(w io.Writer, format outputFormat, data json.RawMessage) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = json.RawMessage("null")
	}
	if format == outputYAML {
		v, err := decodeNumbers(data)
		if err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write yaml: %w", err)
		}
		return enc.Close()
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return fmt.Errorf("format answer: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// decodeNumbers decodes JSON keeping integers integers: YAML would print float64 ids as 1e+06.
func decodeNumbers(data json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	return fromNumbers(v), nil
}

func fromNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromNumbers(e)
		}
	}
	return v
}

type field struct {
	name  string
	value json.RawMessage
}

// orderedFields splits a JSON object into its fields in the order the API wrote them, which
// puts id and ref first where a map would sort them away.
func orderedFields(data json.RawMessage) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("decode answer: want a JSON object")
	}
	var fields []field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("decode answer: %w", err)
		}
		name, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("decode answer field %s: %w", name, err)
		}
		fields = append(fields, field{name, value})
	}
	return fields, nil
}

// cell renders one JSON value on one line: strings bare (quoted when they hold line breaks or
// tabs, which would break the table), times to the second, null and absent as empty, and
// objects and arrays as compact JSON.
func cell(raw json.RawMessage, width int) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			s = t.Format(time.RFC3339)
		} else if strings.ContainsAny(s, "\n\r\t") {
			s = strconv.Quote(s)
		}
	} else {
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			return string(raw)
		}
		s = buf.String()
	}
	if width > 0 && len([]rune(s)) > width {
		s = string([]rune(s)[:width-1]) + "…"
	}
	return s
}
