package sensor

import (
	"github.com/attune-go/attune/modules/schedule"
	"github.com/attune-go/attune/store"
)

// The built-in timer triggers of the core pack.
const (
	IntervalTimer = schedule.IntervalTimer
	CronTimer     = schedule.CronTimer
	DateTimeTimer = schedule.DateTimeTimer
)

// isTimer reports whether triggerRef is one of the triggers this module fires.
func isTimer(triggerRef string) bool { return schedule.IsTimer(triggerRef) }

// plan reads the schedule of a timer rule from its trigger_params, with the parser that pack
// registration and the API check rules with: a rule refused there is one that could not fire
// here. Rules stored before that check may still fail here; the error says why, for the
// operator.
func plan(r store.Rule) (schedule.Schedule, error) {
	return schedule.Parse(r.TriggerRef, r.TriggerParams)
}
