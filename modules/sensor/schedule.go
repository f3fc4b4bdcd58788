package sensor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/attune-go/attune/store"
)

// The built-in timer triggers of the core pack.
const (
	IntervalTimer = "core.intervaltimer"
	CronTimer     = "core.crontimer"
	DateTimeTimer = "core.datetimetimer"
)

// isTimer reports whether triggerRef is one of the triggers this module fires.
func isTimer(triggerRef string) bool {
	return triggerRef == IntervalTimer || triggerRef == CronTimer || triggerRef == DateTimeTimer
}

// schedule yields the due times of one rule's timer. Due times depend only on the rule, never
// on when a replica started, so that every leader computes the same ticks and the database can
// tell a tick already fired from a new one.
type schedule interface {
	// next returns the first due time strictly after t, or the zero time when none is left.
	next(t time.Time) time.Time
	// payload is the event payload of the tick due at at, the count'th this schedule fired.
	payload(at time.Time, count int) map[string]any
}

// maxIntervalSeconds keeps aligned tick arithmetic far from overflow; nobody needs a longer
// interval.
const maxIntervalSeconds = 100 * 366 * 24 * 3600

var unitSeconds = map[string]int64{"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}

// cronParser reads 5 fields, or 6 with seconds first, and descriptors such as @daily.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// plan reads the schedule of a timer rule from its trigger_params. The error says what is
// wrong with them, for the operator.
func plan(r store.Rule) (schedule, error) {
	params := map[string]any{}
	if len(r.TriggerParams) > 0 {
		if err := json.Unmarshal(r.TriggerParams, &params); err != nil {
			return nil, fmt.Errorf("decode trigger_params: %w", err)
		}
	}
	switch r.TriggerRef {
	case IntervalTimer:
		return planInterval(params)
	case CronTimer:
		return planCron(params)
	case DateTimeTimer:
		return planDateTime(params)
	}
	return nil, fmt.Errorf("trigger %s is not a timer", r.TriggerRef)
}

// intervalSchedule ticks every every seconds, at the multiples of every since the Unix epoch:
// an hourly timer fires on the hour and a daily one at midnight UTC, whenever it was created.
type intervalSchedule struct {
	every int64
}

func planInterval(params map[string]any) (schedule, error) {
	unit := "seconds"
	if v, ok := params["unit"]; ok && v != nil {
		s, _ := v.(string)
		if _, known := unitSeconds[s]; !known {
			return nil, fmt.Errorf("unit must be seconds, minutes, hours or days, not %v", v)
		}
		unit = s
	}
	n, ok := params["interval"].(float64)
	if !ok || n != math.Trunc(n) || n <= 0 {
		return nil, fmt.Errorf("interval must be an integer greater than 0, not %v", params["interval"])
	}
	if n > float64(maxIntervalSeconds/unitSeconds[unit]) {
		return nil, fmt.Errorf("interval must be at most 100 years, not %v %s", n, unit)
	}
	return intervalSchedule{every: int64(n) * unitSeconds[unit]}, nil
}

func (s intervalSchedule) next(t time.Time) time.Time {
	// Unix() rounds down, so the next multiple after its second is the next after t.
	sec := t.Unix()
	n := sec / s.every
	if sec < 0 && sec%s.every != 0 {
		n-- // round toward minus infinity before the epoch too
	}
	return time.Unix((n+1)*s.every, 0).UTC()
}

func (s intervalSchedule) payload(at time.Time, count int) map[string]any {
	return map[string]any{"type": "interval", "interval_seconds": s.every, "fired_at": at.Format(time.RFC3339), "execution_count": count}
}

// cronSchedule ticks on a cron expression read in a time zone.
type cronSchedule struct {
	spec cron.Schedule
	loc  *time.Location
}

func planCron(params map[string]any) (s schedule, err error) {
	expr, ok := params["expression"].(string)
	if !ok || strings.TrimSpace(expr) == "" {
		return nil, errors.New("expression is required: a cron expression of 5 or 6 fields")
	}
	tz := "UTC"
	if v, ok := params["timezone"]; ok && v != nil {
		tz, _ = v.(string)
	}
	// "Local" would make replicas in different zones disagree on the ticks.
	if tz == "" || tz == "Local" {
		return nil, fmt.Errorf("timezone must be an IANA time zone name, not %v", params["timezone"])
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %w", tz, err)
	}
	// The zone comes from the timezone parameter; the parser's own prefix also panics on an
	// expression with nothing after it.
	if upper := strings.ToUpper(strings.TrimSpace(expr)); strings.HasPrefix(upper, "TZ=") || strings.HasPrefix(upper, "CRON_TZ=") {
		return nil, fmt.Errorf("expression %q: give the time zone in the timezone parameter", expr)
	}
	defer func() {
		// A parser bug must cost one rule, not the sensor.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("expression %q: %v", expr, r)
		}
	}()
	spec, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", expr, err)
	}
	sp, ok := spec.(*cron.SpecSchedule)
	if !ok {
		// @every counts from when it was parsed, which two leaders would not agree on.
		return nil, fmt.Errorf("expression %q: @every is not supported; use core.intervaltimer", expr)
	}
	sp.Location = loc
	return cronSchedule{spec: sp, loc: loc}, nil
}

func (s cronSchedule) next(t time.Time) time.Time {
	// Next returns the zero time when nothing matches within five years (February 30th).
	return s.spec.Next(t.In(s.loc))
}

func (s cronSchedule) payload(at time.Time, count int) map[string]any {
	return map[string]any{"type": "cron", "fired_at": at.In(s.loc).Format(time.RFC3339), "execution_count": count}
}

// dateTimeSchedule fires once, at at.
type dateTimeSchedule struct {
	at time.Time
}

func planDateTime(params map[string]any) (schedule, error) {
	v, _ := params["fire_at"].(string)
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("fire_at must be an RFC 3339 time such as 2030-01-02T15:04:05Z, not %v", params["fire_at"])
	}
	return dateTimeSchedule{at: at}, nil
}

func (s dateTimeSchedule) next(t time.Time) time.Time {
	if s.at.After(t) {
		return s.at
	}
	return time.Time{}
}

func (s dateTimeSchedule) payload(at time.Time, _ int) map[string]any {
	return map[string]any{"type": "datetime", "fired_at": at.Format(time.RFC3339)}
}
