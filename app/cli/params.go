package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/modules/pack"
)

// paramFlags are --param k=v (repeated) and --params-json, shared by execute and rerun.
type paramFlags struct {
	pairs []string
	json  string
}

func (p *paramFlags) register(cmd *cobra.Command, withJSON bool) {
	cmd.Flags().StringArrayVar(&p.pairs, "param", nil, "parameter as name=value, repeatable; the value is read as the action's schema types it "+
		"(text for a string, JSON for an array or object), null leaves it out")
	if withJSON {
		cmd.Flags().StringVar(&p.json, "params-json", "", "parameters as one JSON object; --param ones win over it by name")
	}
}

// paramPair is one --param as given.
type paramPair struct{ name, raw string }

// parse merges the parameters, the --param ones read by the schema that schema fetches (only
// when there are any). Malformed flags are usage errors found before any request. Errors do
// not repeat what was given: it may hold a secret, and would end up in a terminal's
// scrollback or a CI log.
func (p *paramFlags) parse(ctx context.Context, schema func(context.Context) (pack.Schema, error)) (map[string]any, error) {
	params := map[string]any{}
	if p.json != "" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(p.json), &obj); err != nil || obj == nil {
			return nil, UsageError{errors.New("invalid --params-json: want a JSON object")}
		}
		params = obj
	}
	pairs := make([]paramPair, len(p.pairs))
	for i, pair := range p.pairs {
		name, raw, ok := strings.Cut(pair, "=")
		if !ok || name == "" {
			return nil, UsageError{fmt.Errorf("invalid --param (the %s): want name=value", ordinal(i+1))}
		}
		pairs[i] = paramPair{name, raw}
	}
	if len(pairs) == 0 {
		return params, nil
	}
	s, err := schema(ctx)
	if err != nil {
		return nil, err
	}
	for _, pair := range pairs {
		v, err := paramValue(s[pair.name], pair.raw)
		if err != nil {
			return nil, UsageError{fmt.Errorf("invalid --param %s: %w", pair.name, err)}
		}
		params[pair.name] = v
	}
	return params, nil
}

// paramValue reads the text of a --param as its parameter p's type. null is "not given" for
// every type, as the API takes a null: the default applies, and a rerun drops the original's.
// The mask stays text whatever the type, so that a rerun keeps the original's secret. A name
// the schema lacks (p's Type empty) or a parameter of type any is JSON when it parses as JSON,
// else text: the API refuses an unknown name itself, with the names it wants, except a null
// that drops one from a rerun.
func paramValue(p pack.Param, raw string) (any, error) {
	if raw == "null" {
		return nil, nil
	}
	if raw == pack.Mask {
		return raw, nil
	}
	switch p.Type {
	case pack.TypeString:
		return raw, nil
	case pack.TypeInteger:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, errors.New("want an integer, such as 3")
		}
		return n, nil
	case pack.TypeNumber:
		// JSON's grammar: no Inf, NaN or hex, which the API could not take.
		var f float64
		if err := json.Unmarshal([]byte(raw), &f); err != nil || math.IsInf(f, 0) {
			return nil, errors.New("want a number, such as 2.5")
		}
		return f, nil
	case pack.TypeBoolean:
		switch raw {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, errors.New("want true or false")
	case pack.TypeArray:
		var a []any
		if err := json.Unmarshal([]byte(raw), &a); err != nil || a == nil {
			return nil, errors.New(`want a JSON array, such as ["a", "b"]`)
		}
		return a, nil
	case pack.TypeObject:
		var o map[string]any
		if err := json.Unmarshal([]byte(raw), &o); err != nil || o == nil {
			return nil, errors.New(`want a JSON object, such as {"key": "value"}`)
		}
		return o, nil
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return raw, nil
	}
	return v, nil
}

// ordinal writes n as 1st, 2nd, 3rd, 4th...
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(n) + suffix
}

// actionSchema fetches the parameter schema of action ref, as the API shows it: the defaults
// and enum values of secret parameters masked.
func actionSchema(ctx context.Context, client *apiClient, ref string) (pack.Schema, error) {
	data, err := client.get(ctx, "/api/v1/actions/"+url.PathEscape(ref))
	if err != nil {
		return nil, err
	}
	var action struct {
		Parameters pack.Schema `json:"parameters"`
	}
	if err := json.Unmarshal(data, &action); err != nil {
		return nil, fmt.Errorf("decode action %s: %w", ref, err)
	}
	return action.Parameters, nil
}

// executionSchema fetches the parameter schema of the action execution path ran: a rerun's
// parameters are read by the action as it is now, as the API checks them.
func executionSchema(ctx context.Context, client *apiClient, path string) (pack.Schema, error) {
	data, err := client.get(ctx, path)
	if err != nil {
		return nil, err
	}
	var exec struct {
		ActionRef string `json:"action_ref"`
	}
	if err := json.Unmarshal(data, &exec); err != nil || exec.ActionRef == "" {
		return nil, fmt.Errorf("read execution at %s: no action_ref in the answer", path)
	}
	return actionSchema(ctx, client, exec.ActionRef)
}
