package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// maxPerPage is the API's largest page.
const maxPerPage = 100

// The table columns of each noun: a few that tell the rows apart, the rest is in -o json.
var (
	packColumns        = []column{{"REF", "ref", 0}, {"VERSION", "version", 0}, {"LABEL", "label", 30}, {"DESCRIPTION", "description", 50}}
	actionColumns      = []column{{"REF", "ref", 0}, {"RUNNER", "runner_type", 0}, {"ENABLED", "enabled", 0}, {"DESCRIPTION", "description", 50}}
	triggerColumns     = []column{{"REF", "ref", 0}, {"ENABLED", "enabled", 0}, {"DESCRIPTION", "description", 50}}
	sensorColumns      = []column{{"REF", "ref", 0}, {"STATUS", "status", 0}, {"HOLDER", "holder", 0}, {"RESTARTS", "restarts", 0}, {"LAST ERROR", "last_error", 60}}
	ruleColumns        = []column{{"REF", "ref", 0}, {"TRIGGER", "trigger_ref", 0}, {"ACTION", "action_ref", 0}, {"ENABLED", "enabled", 0}}
	eventColumns       = []column{{"ID", "id", 0}, {"TRIGGER", "trigger_ref", 0}, {"SOURCE", "source", 0}, {"CREATED", "created", 0}}
	enforcementColumns = []column{{"ID", "id", 0}, {"RULE", "rule_ref", 0}, {"EVENT", "event_id", 0}, {"STATUS", "status", 0}, {"CREATED", "created", 0}, {"REASON", "reason", 60}}
	executionColumns   = []column{{"ID", "id", 0}, {"ACTION", "action_ref", 0}, {"STATUS", "status", 0}, {"CREATED", "created", 0}, {"WORKER", "worker", 0}, {"REASON", "reason", 60}}
	policyColumns      = []column{{"REF", "ref", 0}, {"ACTION", "action_ref", 0}, {"ALL OF PACK", "pack_ref", 0}, {"PACK", "source_pack", 0}, {"ENABLED", "enabled", 0}}
	workerColumns      = []column{{"NAME", "name", 0}, {"STATUS", "status", 0}, {"RUNNERS", "runners", 0}, {"LABELS", "labels", 40}, {"CONCURRENCY", "concurrency", 0}, {"HOST", "host", 0}, {"LAST HEARTBEAT", "last_heartbeat", 0}}
)

// newNounCommand is the parent of one noun's commands, holding the flags all of them take.
func newNounCommand(use, short string, api *apiFlags) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	api.register(cmd.PersistentFlags())
	api.registerOutput(cmd.PersistentFlags())
	return cmd
}

// listCommand is the spec of a plain "NOUN list": what pack definitions hold (ref order) is
// listed whole, page after page (all); what happens (newest first) as deep as --limit says
// (recent).
type listCommand struct {
	noun, path string
	columns    []column
	all        bool
	// packFilter adds --pack REF, sent as ?pack=.
	packFilter bool
	// recent adds --limit, --since and --until.
	recent bool
	// filters are more flags, each sent as its query parameter when given.
	filters []queryFlag
}

// queryFlag is a list's flag that the API takes as a query parameter.
type queryFlag struct{ flag, param, usage string }

func newListCommand(streams Streams, api *apiFlags, spec listCommand) *cobra.Command {
	var pack string
	var recent recentFlags
	filters := make([]string, len(spec.filters))
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List " + spec.noun,
		Args:  UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if pack != "" {
				q.Set("pack", pack)
			}
			for i, f := range spec.filters {
				if filters[i] != "" {
					q.Set(f.param, filters[i])
				}
			}
			if spec.recent {
				if err := recent.apply(q, time.Now()); err != nil {
					return err
				}
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			var items []json.RawMessage
			if spec.recent {
				items, err = client.listUpTo(cmd.Context(), spec.path, q, recent.limit)
			} else {
				items, err = client.list(cmd.Context(), spec.path, q, spec.all)
			}
			if err != nil {
				return err
			}
			return printList(streams.Out, api.output, items, spec.columns)
		},
	}
	if spec.packFilter {
		cmd.Flags().StringVar(&pack, "pack", "", "only those of this pack")
	}
	for i, f := range spec.filters {
		cmd.Flags().StringVar(&filters[i], f.flag, "", f.usage)
	}
	if spec.recent {
		recent.register(cmd.Flags())
	}
	return cmd
}

// newShowCommand is "NOUN show REF" for what is addressed by ref.
func newShowCommand(streams Streams, api *apiFlags, noun, path string) *cobra.Command {
	return newShowCommandPrinting(streams, api, noun, path, printObject)
}

// newShowCommandPrinting is newShowCommand printing the object with print.
func newShowCommandPrinting(streams Streams, api *apiFlags, noun, path string, print func(io.Writer, outputFormat, json.RawMessage) error) *cobra.Command {
	return &cobra.Command{
		Use:   "show REF",
		Short: "Show one " + noun,
		Args:  UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), path+"/"+url.PathEscape(args[0]))
			if err != nil {
				return err
			}
			return print(streams.Out, api.output, data)
		},
	}
}

// deleteCommand is the spec of a "NOUN delete KEY": the API answers 204 at path/KEY.
type deleteCommand struct {
	noun, key, path string
	short, long     string
}

func newDeleteCommand(streams Streams, api *apiFlags, spec deleteCommand) *cobra.Command {
	return &cobra.Command{
		Use:   "delete " + spec.key,
		Short: spec.short,
		Long:  spec.long,
		Args:  UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			if err := client.delete(cmd.Context(), spec.path+"/"+url.PathEscape(args[0])); err != nil {
				return err
			}
			_, err = fmt.Fprintf(streams.Out, "deleted %s %s\n", spec.noun, args[0])
			return err
		},
	}
}

// newReadNoun is a noun the CLI lists and shows one of, with the commands more builds on the
// same API flags; show is newShowCommand or newShowByIDCommand.
func newReadNoun(streams Streams, use, short string, spec listCommand, show func(api *apiFlags) *cobra.Command,
	more ...func(api *apiFlags) *cobra.Command) *cobra.Command {
	var api apiFlags
	cmd := newNounCommand(use, short, &api)
	cmd.AddCommand(newListCommand(streams, &api, spec), show(&api))
	for _, build := range more {
		cmd.AddCommand(build(&api))
	}
	return cmd
}

func newTriggerCommand(streams Streams) *cobra.Command {
	return newReadNoun(streams, "trigger", "List and show triggers through the API",
		listCommand{noun: "triggers", path: "/api/v1/triggers", columns: triggerColumns, all: true, packFilter: true},
		func(api *apiFlags) *cobra.Command { return newShowCommand(streams, api, "trigger", "/api/v1/triggers") })
}

// newSensorCommand lists and shows custom sensors with the state the replica running each
// reports, and enables and disables them.
func newSensorCommand(streams Streams) *cobra.Command {
	const path = "/api/v1/sensors"
	return newReadNoun(streams, "sensor", "List, show, enable and disable custom sensors through the API",
		listCommand{noun: "sensors, with their status, restarts and last error", path: path, columns: sensorColumns, all: true, packFilter: true},
		func(api *apiFlags) *cobra.Command { return newShowCommand(streams, api, "sensor", path) },
		func(api *apiFlags) *cobra.Command {
			return newStateCommand(streams, api, path, "enable", "Enable a sensor: a sensor replica runs it while an enabled rule uses one of its triggers")
		},
		func(api *apiFlags) *cobra.Command {
			return newStateCommand(streams, api, path, "disable", "Disable a sensor: the replica running it stops it")
		})
}

func newEventCommand(streams Streams) *cobra.Command {
	return newReadNoun(streams, "event", "List, show and create events through the API",
		listCommand{noun: "the latest events, newest first", path: "/api/v1/events", columns: eventColumns, recent: true,
			filters: []queryFlag{{"trigger", "trigger_ref", "only events of this trigger ref"}}},
		func(api *apiFlags) *cobra.Command { return newShowByIDCommand(streams, api, "event", "/api/v1/events") },
		func(api *apiFlags) *cobra.Command { return newEventCreateCommand(streams, api) })
}

// newPolicyCommand's list shows in ALL OF PACK the pack a pack-wide policy limits every action
// of, and in PACK the pack a policy came with (none for one made through the API).
func newPolicyCommand(streams Streams) *cobra.Command {
	return newReadNoun(streams, "policy", "List, show, create and delete policies through the API",
		listCommand{noun: "policies, those of packs included", path: "/api/v1/policies", columns: policyColumns, all: true},
		func(api *apiFlags) *cobra.Command { return newShowCommand(streams, api, "policy", "/api/v1/policies") },
		func(api *apiFlags) *cobra.Command { return newPolicyCreateCommand(streams, api) },
		func(api *apiFlags) *cobra.Command {
			return newDeleteCommand(streams, api, deleteCommand{noun: "policy", key: "REF", path: "/api/v1/policies",
				short: "Delete a policy; the executions waiting under it are admitted",
				long: `Deletes the policy REF through the API. A policy of a pack registered from a directory comes
back when that pack is registered again: change the pack's policies/ file instead.`})
		})
}

func newWorkerCommand(streams Streams) *cobra.Command {
	return newReadNoun(streams, "worker", "List, show and delete workers through the API",
		listCommand{noun: "workers, most recently seen first", path: "/api/v1/workers", columns: workerColumns, all: true},
		func(api *apiFlags) *cobra.Command {
			show := newShowCommand(streams, api, "worker", "/api/v1/workers")
			show.Use = "show NAME"
			return show
		},
		func(api *apiFlags) *cobra.Command {
			return newDeleteCommand(streams, api, deleteCommand{noun: "worker", key: "NAME", path: "/api/v1/workers",
				short: "Delete the record of a stopped worker",
				long: `Deletes the record of worker NAME through the API, once it is gone: the server refuses while
the worker heartbeats (within the api process's --worker-timeout) or an execution still runs
on it. The executions it ran stay, and still name it.`})
		})
}

func newEnforcementCommand(streams Streams) *cobra.Command {
	return newReadNoun(streams, "enforcement", "List and show enforcements through the API",
		listCommand{noun: "the latest enforcements, newest first", path: "/api/v1/enforcements", columns: enforcementColumns, recent: true,
			filters: []queryFlag{{"rule", "rule_ref", "only enforcements of this rule ref"}}},
		func(api *apiFlags) *cobra.Command {
			return newShowByIDCommand(streams, api, "enforcement", "/api/v1/enforcements")
		})
}

// newShowByIDCommand is "NOUN show ID" for what is addressed by numeric id.
func newShowByIDCommand(streams Streams, api *apiFlags, noun, path string) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one " + noun,
		Args:  UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return UsageError{fmt.Errorf("invalid %s id %q: want a positive integer", noun, args[0])}
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), path+"/"+strconv.FormatInt(id, 10))
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
}

// get answers the data of one object at path, with the HTTP status in an API error.
func (c *apiClient) get(ctx context.Context, path string) (json.RawMessage, error) {
	env, err := c.call(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, withStatus(err)
	}
	return env.Data, nil
}

// post sends body to path and answers the data of the answer, with the HTTP status in an
// API error.
func (c *apiClient) post(ctx context.Context, path string, body any) (json.RawMessage, error) {
	env, err := c.call(ctx, http.MethodPost, path, nil, body)
	if err != nil {
		return nil, withStatus(err)
	}
	return env.Data, nil
}

// put sends body to path with PUT and answers the data of the answer.
func (c *apiClient) put(ctx context.Context, path string, body any) (json.RawMessage, error) {
	return c.send(ctx, http.MethodPut, path, body)
}

// send is any request with a JSON body (nil for none); it answers the data, nil for 204.
func (c *apiClient) send(ctx context.Context, method, path string, body any) (json.RawMessage, error) {
	env, err := c.call(ctx, method, path, nil, body)
	if err != nil {
		return nil, withStatus(err)
	}
	return env.Data, nil
}

// delete deletes what is at path, with the HTTP status in an API error.
func (c *apiClient) delete(ctx context.Context, path string) error {
	_, err := c.send(ctx, http.MethodDelete, path, nil)
	return err
}

// list answers the items of a list at path: the first page of query's per_page (the API's
// default when unset), or with all every page at the largest size.
func (c *apiClient) list(ctx context.Context, path string, query url.Values, all bool) ([]json.RawMessage, error) {
	if all {
		return c.listUpTo(ctx, path, query, math.MaxInt)
	}
	items, _, err := c.page(ctx, path, query, 1)
	return items, err
}
