package pack

import (
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// packLookup finds components in already loaded packs, as the database would.
type packLookup []*Pack

func (l packLookup) ActionExists(ref string) bool {
	for _, p := range l {
		for _, a := range p.Actions {
			if a.Ref == ref {
				return true
			}
		}
	}
	return false
}

func (l packLookup) TriggerExists(ref string) bool {
	for _, p := range l {
		for _, t := range p.Triggers {
			if t.Ref == ref {
				return true
			}
		}
	}
	return false
}

func TestCheckReferencesDemo(t *testing.T) {
	t.Parallel()
	core, err := Core()
	require.NoError(t, err)
	demo, err := Load(filepath.Join(packsDir, "demo"))
	require.NoError(t, err)

	require.NoError(t, demo.CheckReferences(packLookup{core}))
	err = demo.CheckReferences(nil)
	require.EqualError(t, err, `check references of pack demo: rules/every_second.yaml: trigger_ref: no trigger "core.intervaltimer"`)
	var perr *Error
	require.ErrorAs(t, err, &perr)
	require.Equal(t, "rules/every_second.yaml", perr.File)
	require.Equal(t, "trigger_ref", perr.Field)
}

func TestCheckReferences(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"pack.yaml":       "ref: demo\n",
		"actions/a.yaml":  "name: a\nrunner_type: noop\n",
		"triggers/t.yaml": "name: t\n",
	}
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{name: "within the pack", files: map[string]string{
			"rules/r.yaml":    "name: r\ntrigger_ref: demo.t\naction_ref: demo.a\n",
			"sensors/s.yaml":  "name: s\ntrigger_refs: [demo.t]\n",
			"policies/p.yaml": "name: p\naction_ref: demo.a\nconcurrency: {limit: 1}\n",
		}},
		{name: "through the lookup", files: map[string]string{
			"rules/r.yaml":    "name: r\ntrigger_ref: core.webhook\naction_ref: core.noop\n",
			"sensors/s.yaml":  "name: s\ntrigger_refs: [core.webhook]\n",
			"policies/p.yaml": "name: p\naction_ref: core.echo\nconcurrency: {limit: 1}\n",
		}},
		{name: "pack scoped policy is not looked up", files: map[string]string{
			"policies/p.yaml": "name: p\npack_ref: elsewhere\nconcurrency: {limit: 1}\n",
		}},
		{name: "missing action", files: map[string]string{"rules/r.yaml": "name: r\ntrigger_ref: demo.t\naction_ref: demo.missing\n"},
			wantErr: `rules/r.yaml: action_ref: no action "demo.missing"`},
		{name: "missing trigger", files: map[string]string{"rules/r.yaml": "name: r\ntrigger_ref: core.nothing\naction_ref: demo.a\n"},
			wantErr: `rules/r.yaml: trigger_ref: no trigger "core.nothing"`},
		{name: "action is not a trigger", files: map[string]string{"rules/r.yaml": "name: r\ntrigger_ref: demo.a\naction_ref: demo.a\n"},
			wantErr: `rules/r.yaml: trigger_ref: no trigger "demo.a"`},
		{name: "sensor trigger", files: map[string]string{"sensors/s.yaml": "name: s\ntrigger_refs: [demo.t, demo.gone]\n"},
			wantErr: `sensors/s.yaml: trigger_refs[1]: no trigger "demo.gone"`},
		{name: "policy action", files: map[string]string{"policies/p.yaml": "name: p\naction_ref: other.a\nconcurrency: {limit: 1}\n"},
			wantErr: `policies/p.yaml: action_ref: no action "other.a"`},
	}
	core, err := Core()
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{}
			for name, data := range base {
				fsys[name] = file(data)
			}
			for name, data := range tt.files {
				fsys[name] = file(data)
			}
			p, err := LoadFS(fsys, ".")
			require.NoError(t, err, "references are not checked on load")
			err = p.CheckReferences(packLookup{core})
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, "check references of pack demo: "+tt.wantErr)
		})
	}
}
