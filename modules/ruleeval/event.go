package ruleeval

// eventEnv and ruleEnv are structs rather than maps so that expr's checker rejects a typo
// such as event.paylod at parse time instead of letting it read as nil forever.
type eventEnv struct {
	ID         int64          `expr:"id" json:"id"`
	TriggerRef string         `expr:"trigger_ref" json:"trigger_ref"`
	Payload    map[string]any `expr:"payload" json:"payload"`
}

type ruleEnv struct {
	Ref string `expr:"ref" json:"ref"`
}

// rules is the language of rules' conditions and templates, over newEnv's names.
var rules = NewEnv(map[string]any{
	"event":   eventEnv{},
	"trigger": map[string]any{},
	"rule":    ruleEnv{},
	KVName:    map[string]any{},
})

// templates are the rules' compiled templates.
var templates = &rules.programs

// newEnv builds what templates and expressions see of an event. The payload is copied and its
// json.Numbers turned into numbers, so expressions can do arithmetic on them and nothing they
// return aliases the event.
func newEnv(in Input) map[string]any {
	payload, _ := plain(in.Payload).(map[string]any)
	return map[string]any{
		"event":   eventEnv{ID: in.EventID, TriggerRef: in.TriggerRef, Payload: payload},
		"trigger": payload,
		"rule":    ruleEnv{Ref: in.RuleRef},
		KVName:    in.KV,
	}
}
