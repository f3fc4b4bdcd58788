package pack

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/attune-go/attune/modules/workflow"
	"github.com/attune-go/attune/store"
)

// Runner types: how an action runs.
const (
	// RunnerShell runs the entry point script, or the CommandParam parameter with /bin/sh -c
	// when the action has no entry point.
	RunnerShell = "shell"
	// RunnerHTTP makes an HTTP request described by the parameters.
	RunnerHTTP = "http"
	// RunnerNoop does nothing and succeeds; it is for testing rules and policies.
	RunnerNoop = "noop"
	// RunnerWorkflow runs the workflow its entry point defines (package workflow): the
	// executor runs its tasks as executions of their own, not a worker.
	RunnerWorkflow = "workflow"
	// RunnerInquiry waits for a person's answer (core.ask): the executor records the inquiry
	// and the answer ends the execution, not a worker.
	RunnerInquiry = "inquiry"
)

var runnerTypes = []string{RunnerShell, RunnerHTTP, RunnerNoop, RunnerWorkflow, RunnerInquiry}

// Output formats: how a worker turns an action's standard output into its result.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// CommandParam is the parameter a shell action without an entry point runs as an inline
// command; it is how core.local works.
const CommandParam = "cmd"

// DefaultTimeoutSeconds is an action's timeout when its file gives none.
const DefaultTimeoutSeconds = 600

var (
	packRefPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	namePattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// Action is something a worker can run.
type Action struct {
	Ref         string `json:"ref" yaml:"ref"`
	Name        string `json:"name" yaml:"name"`
	Label       string `json:"label" yaml:"label"`
	Description string `json:"description" yaml:"description"`
	// RunnerType is one of the Runner constants.
	RunnerType string `json:"runner_type" yaml:"runner_type"`
	// EntryPoint is the script's path relative to the pack's actions/ directory or, for a
	// workflow, its definition's.
	EntryPoint string `json:"entry_point" yaml:"entry_point"`
	Parameters Schema `json:"parameters" yaml:"parameters"`
	// OutputFormat is OutputText or OutputJSON.
	OutputFormat   string `json:"output_format" yaml:"output_format"`
	TimeoutSeconds int    `json:"timeout_seconds" yaml:"timeout_seconds"`
	Enabled        bool   `json:"enabled" yaml:"enabled"`
	// Retry, when set, tries an execution again when it fails; a policy's retry wins.
	Retry *Retry `json:"retry,omitempty" yaml:"retry"`
	// WorkerSelector names labels a worker must have to run the action (docs/routing.md); a
	// policy's wins over it.
	WorkerSelector store.Labels `json:"worker_selector,omitempty" yaml:"worker_selector"`
	// Workflow is a workflow action's definition, read from its entry point and checked.
	Workflow *workflow.Definition `json:"workflow,omitempty" yaml:"-"`
	// File is the path of the YAML file relative to the pack directory, for error messages.
	File string `json:"file,omitempty" yaml:"-"`
}

// Trigger is a kind of event. Rules configure it through Parameters; its events carry
// payloads described by Output.
type Trigger struct {
	Ref         string `json:"ref" yaml:"ref"`
	Name        string `json:"name" yaml:"name"`
	Label       string `json:"label" yaml:"label"`
	Description string `json:"description" yaml:"description"`
	Parameters  Schema `json:"parameters" yaml:"parameters"`
	Output      Schema `json:"output" yaml:"output"`
	File        string `json:"file,omitempty" yaml:"-"`
}

// Sensor watches something outside Attune and fires the triggers it names.
type Sensor struct {
	Ref         string `json:"ref" yaml:"ref"`
	Name        string `json:"name" yaml:"name"`
	Label       string `json:"label" yaml:"label"`
	Description string `json:"description" yaml:"description"`
	// EntryPoint is the sensor's program, relative to the pack's sensors/ directory.
	EntryPoint  string   `json:"entry_point" yaml:"entry_point"`
	TriggerRefs []string `json:"trigger_refs" yaml:"trigger_refs"`
	Parameters  Schema   `json:"parameters" yaml:"parameters"`
	// Config is given to the running sensor as JSON in ATTUNE_SENSOR_CONFIG.
	Config  map[string]any `json:"config" yaml:"config"`
	Enabled bool           `json:"enabled" yaml:"enabled"`
	File    string         `json:"file,omitempty" yaml:"-"`
}

// Rule runs an action when a trigger's event matches its conditions.
type Rule struct {
	Ref           string         `json:"ref" yaml:"ref"`
	Name          string         `json:"name" yaml:"name"`
	Label         string         `json:"label" yaml:"label"`
	Description   string         `json:"description" yaml:"description"`
	TriggerRef    string         `json:"trigger_ref" yaml:"trigger_ref"`
	TriggerParams map[string]any `json:"trigger_params" yaml:"trigger_params"`
	// Conditions are kept as written, normalised to JSON shapes; the rule matcher gives them
	// meaning. Nil means the rule matches every event of its trigger.
	Conditions   any            `json:"conditions" yaml:"conditions"`
	ActionRef    string         `json:"action_ref" yaml:"action_ref"`
	ActionParams map[string]any `json:"action_params" yaml:"action_params"`
	Enabled      bool           `json:"enabled" yaml:"enabled"`
	File         string         `json:"file,omitempty" yaml:"-"`
}

func (a *Action) validate(packRef string) error {
	var err error
	if a.Ref, a.Name, err = resolveRef(packRef, a.Ref, a.Name); err != nil {
		return err
	}
	switch {
	case a.RunnerType == "":
		return fieldError("runner_type", errors.New("required"))
	case !slices.Contains(runnerTypes, a.RunnerType):
		return fieldError("runner_type", fmt.Errorf("unknown runner %q; want %s", a.RunnerType, orList(runnerTypes)))
	}
	if a.Parameters, err = a.Parameters.clean("parameters"); err != nil {
		return err
	}
	switch {
	case a.EntryPoint != "" && a.RunnerType != RunnerShell && a.RunnerType != RunnerWorkflow:
		return fieldError("entry_point", fmt.Errorf("the %s runner takes none", a.RunnerType))
	case a.EntryPoint == "" && a.RunnerType == RunnerWorkflow:
		return fieldError("entry_point", errors.New("required: the workflow's definition, a YAML file under actions/"))
	case a.EntryPoint != "":
		if err := checkEntryPoint(a.EntryPoint, "actions"); err != nil {
			return fieldError("entry_point", err)
		}
	case a.RunnerType == RunnerShell:
		cmd, ok := a.Parameters[CommandParam]
		if !ok {
			return fieldError("entry_point", fmt.Errorf("required for a shell action without a %q parameter", CommandParam))
		}
		if cmd.Type != TypeString {
			return fieldError("parameters."+CommandParam+".type", fmt.Errorf("want string: a shell action without entry_point runs %q with /bin/sh -c", CommandParam))
		}
	}
	if a.OutputFormat != OutputText && a.OutputFormat != OutputJSON {
		return fieldError("output_format", fmt.Errorf("unknown output format %q; want text or json", a.OutputFormat))
	}
	if a.TimeoutSeconds <= 0 {
		return fieldError("timeout_seconds", fmt.Errorf("want more than 0, got %d", a.TimeoutSeconds))
	}
	if err := checkSelector(a.WorkerSelector, a.RunnerType); err != nil {
		return err
	}
	return a.Retry.check("retry")
}

func (t *Trigger) validate(packRef string) error {
	var err error
	if t.Ref, t.Name, err = resolveRef(packRef, t.Ref, t.Name); err != nil {
		return err
	}
	if t.Parameters, err = t.Parameters.clean("parameters"); err != nil {
		return err
	}
	t.Output, err = t.Output.clean("output")
	return err
}

func (s *Sensor) validate(packRef string) error {
	var err error
	if s.Ref, s.Name, err = resolveRef(packRef, s.Ref, s.Name); err != nil {
		return err
	}
	if s.EntryPoint != "" {
		if err := checkEntryPoint(s.EntryPoint, "sensors"); err != nil {
			return fieldError("entry_point", err)
		}
	}
	for i, ref := range s.TriggerRefs {
		if err := checkRef(ref); err != nil {
			return fieldError(fmt.Sprintf("trigger_refs[%d]", i), err)
		}
	}
	if s.Config, err = jsonMap(s.Config, "config"); err != nil {
		return err
	}
	s.Parameters, err = s.Parameters.clean("parameters")
	return err
}

func (r *Rule) validate(packRef string) error {
	var err error
	if r.Ref, r.Name, err = resolveRef(packRef, r.Ref, r.Name); err != nil {
		return err
	}
	if err := checkRef(r.TriggerRef); err != nil {
		return fieldError("trigger_ref", err)
	}
	if r.TriggerParams, err = jsonMap(r.TriggerParams, "trigger_params"); err != nil {
		return err
	}
	if r.Conditions, err = jsonValue(r.Conditions, "conditions"); err != nil {
		return err
	}
	if err := checkRef(r.ActionRef); err != nil {
		return fieldError("action_ref", err)
	}
	if r.ActionParams, err = jsonMap(r.ActionParams, "action_params"); err != nil {
		return err
	}
	return refuseSealed("action_params", r.ActionParams)
}

// resolveRef works out a component's full ref and short name from the ref and name keys,
// either of which may be left out.
func resolveRef(packRef, ref, name string) (string, string, error) {
	if ref == "" {
		if name == "" {
			return "", "", fieldError("ref", errors.New("required"))
		}
		if err := checkName(name); err != nil {
			return "", "", fieldError("name", err)
		}
		return packRef + "." + name, name, nil
	}
	refPack, refName, ok := strings.Cut(ref, ".")
	if !ok {
		return "", "", fieldError("ref", fmt.Errorf("%q: want <pack>.<name>", ref))
	}
	if refPack != packRef {
		return "", "", &Error{Err: fmt.Errorf("ref %q does not belong to pack %q", ref, packRef)}
	}
	if err := checkName(refName); err != nil {
		return "", "", fieldError("ref", err)
	}
	if name != "" && name != refName {
		return "", "", fieldError("name", fmt.Errorf("%q does not match ref %q", name, ref))
	}
	return ref, refName, nil
}

// checkRef checks the form of a reference to a component of any pack.
func checkRef(ref string) error {
	if ref == "" {
		return errors.New("required")
	}
	refPack, refName, ok := strings.Cut(ref, ".")
	if !ok {
		return fmt.Errorf("%q: want <pack>.<name>", ref)
	}
	if err := checkPackRef(refPack); err != nil {
		return fmt.Errorf("%q: %w", ref, err)
	}
	if err := checkName(refName); err != nil {
		return fmt.Errorf("%q: %w", ref, err)
	}
	return nil
}

func checkPackRef(ref string) error {
	if !packRefPattern.MatchString(ref) {
		return fmt.Errorf("pack ref %q is not valid; want lower case letters, digits, _ and -, starting with a letter", ref)
	}
	return nil
}

func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("name %q is not valid; want lower case letters, digits, _ and -, starting with a letter or digit", name)
	}
	return nil
}

// checkEntryPoint keeps a script path inside its directory: the worker joins it to the pack's
// directory, and a path out of it could run any file on the machine.
func checkEntryPoint(entryPoint, dir string) error {
	if path.IsAbs(entryPoint) {
		return fmt.Errorf("%q must be relative to %s/", entryPoint, dir)
	}
	if !fs.ValidPath(entryPoint) || entryPoint == "." {
		return fmt.Errorf("%q must stay inside %s/, with no \"..\", \".\" or empty elements", entryPoint, dir)
	}
	return nil
}
