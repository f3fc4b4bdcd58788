// Package schedule reads the schedules of the core pack's timer triggers, one parser shared by
// the timers that fire them and by the checks that refuse a bad one at the door, so that what
// is accepted is exactly what fires.
package schedule

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	// The zone database goes into the binary, so that every machine knows the same time zones
	// whatever its system has: an API that accepts Europe/Paris and a sensor that cannot load
	// it would store a timer that never fires.
	_ "time/tzdata"
)

// The built-in timer triggers of the core pack.
const (
	IntervalTimer = "core.intervaltimer"
	CronTimer     = "core.crontimer"
	DateTimeTimer = "core.datetimetimer"
)

// IsTimer reports whether triggerRef is one of the timer triggers, whose trigger_params Parse
// reads.
func IsTimer(triggerRef string) bool {
	return triggerRef == IntervalTimer || triggerRef == CronTimer || triggerRef == DateTimeTimer
}

// Schedule yields the due times of one rule's timer. Due times depend only on the rule, never
// on when a replica started, so that every leader computes the same ticks and the database can
// tell a tick already fired from a new one.
type Schedule interface {
	// Next returns the first due time strictly after t, or the zero time when none is left.
	Next(t time.Time) time.Time
	// Payload is the event payload of the tick due at at, the count'th this schedule fired.
	Payload(at time.Time, count int) map[string]any
}

// Error is a timer rule's trigger_params that cannot be scheduled. Param names the parameter
// at fault ("expression", "interval"), empty when the parameters as a whole are.
type Error struct {
	Param string
	Err   error
}

func (e *Error) Error() string {
	if e.Param == "" {
		return e.Err.Error()
	}
	return e.Param + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func paramError(param, format string, args ...any) *Error {
	return &Error{Param: param, Err: fmt.Errorf(format, args...)}
}

// Parse reads the schedule of a rule on the timer triggerRef from its trigger_params, as
// stored (JSON). Problems come back as *Error naming the parameter.
func Parse(triggerRef string, triggerParams json.RawMessage) (Schedule, error) {
	params := map[string]any{}
	if len(triggerParams) > 0 {
		if err := json.Unmarshal(triggerParams, &params); err != nil {
			return nil, &Error{Err: fmt.Errorf("decode trigger_params: %w", err)}
		}
	}
	switch triggerRef {
	case IntervalTimer:
		return parseInterval(params)
	case CronTimer:
		return parseCron(params)
	case DateTimeTimer:
		return parseDateTime(params)
	}
	return nil, &Error{Err: fmt.Errorf("trigger %s is not a timer", triggerRef)}
}

// shown renders a parameter's value for an error message as it was written in JSON.
func shown(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// maxIntervalSeconds keeps aligned tick arithmetic far from overflow; nobody needs a longer
// interval.
const maxIntervalSeconds = 100 * 366 * 24 * 3600

var unitSeconds = map[string]int64{"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}

// intervalSchedule ticks every every seconds, at the multiples of every since the Unix epoch:
// an hourly timer fires on the hour and a daily one at midnight UTC, whenever it was created.
type intervalSchedule struct {
	every int64
}

func parseInterval(params map[string]any) (Schedule, error) {
	unit := "seconds"
	if v, ok := params["unit"]; ok && v != nil {
		s, _ := v.(string)
		if _, known := unitSeconds[s]; !known {
			return nil, paramError("unit", "want seconds, minutes, hours or days, got %s", shown(v))
		}
		unit = s
	}
	v, given := params["interval"]
	if !given || v == nil {
		return nil, paramError("interval", "required: how many units between two firings, an integer greater than 0")
	}
	n, ok := v.(float64)
	if !ok || n != math.Trunc(n) || n <= 0 {
		return nil, paramError("interval", "want an integer greater than 0, got %s", shown(v))
	}
	if n > float64(maxIntervalSeconds/unitSeconds[unit]) {
		return nil, paramError("interval", "want at most 100 years, got %s %s", shown(v), unit)
	}
	return intervalSchedule{every: int64(n) * unitSeconds[unit]}, nil
}

func (s intervalSchedule) Next(t time.Time) time.Time {
	// Unix() rounds down, so the next multiple after its second is the next after t.
	sec := t.Unix()
	n := sec / s.every
	if sec < 0 && sec%s.every != 0 {
		n-- // round toward minus infinity before the epoch too
	}
	return time.Unix((n+1)*s.every, 0).UTC()
}

func (s intervalSchedule) Payload(at time.Time, count int) map[string]any {
	return map[string]any{"type": "interval", "interval_seconds": s.every, "fired_at": at.Format(time.RFC3339), "execution_count": count}
}

// dateTimeSchedule fires once, at at.
type dateTimeSchedule struct {
	at time.Time
}

// FireAtFormat is the one form fire_at takes: RFC 3339, a date, a time and a zone (Z or an
// offset), fractional seconds allowed. A time without a zone would depend on the machine.
const FireAtFormat = time.RFC3339

func parseDateTime(params map[string]any) (Schedule, error) {
	v, given := params["fire_at"]
	if !given || v == nil {
		return nil, paramError("fire_at", "required: when to fire, an RFC 3339 time such as 2030-01-02T15:04:05Z")
	}
	s, ok := v.(string)
	if !ok {
		return nil, paramError("fire_at", "want an RFC 3339 time such as 2030-01-02T15:04:05Z, got %s", shown(v))
	}
	at, err := time.Parse(FireAtFormat, s)
	if err != nil {
		return nil, paramError("fire_at", "%s is not an RFC 3339 time; want a date, a time and a zone, such as 2030-01-02T15:04:05Z or 2030-01-02T15:04:05+02:00", shown(v))
	}
	return dateTimeSchedule{at: at}, nil
}

func (s dateTimeSchedule) Next(t time.Time) time.Time {
	if s.at.After(t) {
		return s.at
	}
	return time.Time{}
}

func (s dateTimeSchedule) Payload(at time.Time, _ int) map[string]any {
	return map[string]any{"type": "datetime", "fired_at": at.Format(time.RFC3339)}
}
