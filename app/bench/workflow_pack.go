package bench

import (
	"context"
	"fmt"
	"strings"
	"testing/fstest"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// The workflows of --workflow, the work of Windmill's published comparison of orchestrators:
// a chain of lightweight tasks, and a fan-out over items under a concurrency cap.
const (
	sequenceAction = "bench.sequence"
	fanOutAction   = "bench.fanout"
	// fanOutConcurrency is the comparison's cap on the items running at once.
	fanOutConcurrency = 16
)

// workflowPack is the bench pack of --workflow, built in memory: a sequence of tasks core.noop
// tasks, and a fan-out of core.noop over its items parameter.
func workflowPack(tasks int) fstest.MapFS {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	return fstest.MapFS{
		"pack.yaml": file("ref: bench\nlabel: Benchmark\n"),
		"actions/sequence.yaml": file(`ref: ` + sequenceAction + `
runner_type: workflow
entry_point: workflows/sequence.yaml
`),
		"actions/workflows/sequence.yaml": file(sequenceDefinition(tasks)),
		"actions/fanout.yaml": file(`ref: ` + fanOutAction + `
runner_type: workflow
entry_point: workflows/fanout.yaml
parameters:
  items:
    type: array
    required: true
`),
		"actions/workflows/fanout.yaml": file(fmt.Sprintf(`input: [items]
tasks:
  each:
    action: core.noop
    with:
      items: "{{ input.items }}"
      concurrency: %d
`, fanOutConcurrency)),
	}
}

// sequenceDefinition is a workflow of n core.noop tasks, each started when the one before
// succeeds: every step is one hop through the engine, and a failure, which no transition
// takes, fails the workflow.
func sequenceDefinition(n int) string {
	var b strings.Builder
	b.WriteString("tasks:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  %s:\n    action: core.noop\n", stepName(i))
		if i < n {
			fmt.Fprintf(&b, "    next:\n      - when: succeeded()\n        do: %s\n", stepName(i+1))
		}
	}
	return b.String()
}

func stepName(i int) string { return fmt.Sprintf("step%d", i) }

// registerWorkflowPack registers the core pack, whose core.noop the workflows run, and the
// workflows' pack, through the checks a pack on disk passes.
func registerWorkflowPack(ctx context.Context, st *store.Store, tasks int) error {
	if err := registerCore(ctx, st); err != nil {
		return err
	}
	p, err := pack.LoadFS(workflowPack(tasks), ".")
	if err != nil {
		return err
	}
	if _, err := pack.Register(ctx, st, p); err != nil {
		return fmt.Errorf("register the workflow pack: %w", err)
	}
	return nil
}

// executeAction starts actionRef with params as the API's execute does: the parameters
// checked against the action's schema, the execution created under its policy, and its
// request sent to the executor when admitted.
func executeAction(ctx context.Context, st *store.Store, br broker.Broker, actionRef string, params map[string]any) (int64, error) {
	action, err := st.ActionGetByRef(ctx, actionRef)
	if err != nil {
		return 0, err
	}
	schema, err := pack.StoredSchema(action.Parameters)
	if err != nil {
		return 0, fmt.Errorf("execute %s: %w", actionRef, err)
	}
	checked, secrets, err := schema.CheckExecution(params, nil)
	if err != nil {
		return 0, fmt.Errorf("execute %s: %w", actionRef, err)
	}
	created, err := st.ExecutionCreateDirect(ctx, store.ExecutionCreateParams{
		ActionRef: action.Ref, Parameters: checked, TimeoutSeconds: &action.TimeoutSeconds, Secrets: secrets,
	})
	if err != nil {
		return 0, fmt.Errorf("execute %s: %w", actionRef, err)
	}
	exec := created.Execution
	if created.Outcome != store.CreateAdmitted {
		return 0, fmt.Errorf("execute %s: execution %d was not admitted (%s)", actionRef, exec.ID, created.Outcome)
	}
	if err := broker.Send(ctx, br, broker.ExecutionRequested{ExecutionID: exec.ID, ActionRef: exec.ActionRef}); err != nil {
		return 0, fmt.Errorf("request execution %d: %w", exec.ID, err)
	}
	return exec.ID, nil
}

// itemList is the items parameter of a fan-out over n items: 0 to n-1.
func itemList(n int) []any {
	items := make([]any, n)
	for i := range items {
		items[i] = i
	}
	return items
}
