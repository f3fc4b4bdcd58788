package schedule

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser reads 5 fields, or 6 with seconds first, and descriptors such as @daily. It is the
// one judge of an expression: explanations below only put its refusals into words.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronField is one field of an expression, as the parser bounds it.
type cronField struct {
	name     string
	min, max int
	names    string // what else it accepts besides numbers
}

var (
	secondField = cronField{name: "second", min: 0, max: 59}
	cronFields  = []cronField{
		{name: "minute", min: 0, max: 59},
		{name: "hour", min: 0, max: 23},
		{name: "day of month", min: 1, max: 31},
		{name: "month", min: 1, max: 12, names: "a month name such as JAN"},
		{name: "day of week", min: 0, max: 6, names: "a day name such as MON; 0 is Sunday"},
	}
)

const cronForm = "5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first, or a descriptor such as @daily"

// cronSchedule ticks on a cron expression read in a time zone.
type cronSchedule struct {
	spec cron.Schedule
	loc  *time.Location
}

func parseCron(params map[string]any) (Schedule, error) {
	v, given := params["expression"]
	if !given || v == nil {
		return nil, paramError("expression", "required: a cron expression of %s", cronForm)
	}
	expr, ok := v.(string)
	if !ok {
		return nil, paramError("expression", "want a cron expression of %s, got %s", cronForm, shown(v))
	}
	loc, err := parseZone(params)
	if err != nil {
		return nil, err
	}
	sp, err := parseExpression(expr)
	if err != nil {
		return nil, &Error{Param: "expression", Err: err}
	}
	sp.Location = loc
	// The parser gives up after five years; a date that never comes (the 30th of February)
	// would otherwise be a timer that is enabled and never fires.
	if sp.Next(time.Now().In(loc)).IsZero() {
		return nil, paramError("expression", "%q never fires: no date in the next five years matches it", expr)
	}
	return cronSchedule{spec: sp, loc: loc}, nil
}

// parseZone reads the timezone parameter, UTC when left out.
func parseZone(params map[string]any) (*time.Location, error) {
	v, given := params["timezone"]
	if !given || v == nil {
		return time.UTC, nil
	}
	tz, _ := v.(string)
	// "Local" would make replicas in different zones disagree on the ticks.
	if tz == "" || tz == "Local" {
		return nil, paramError("timezone", "want an IANA time zone name such as UTC or Europe/Paris, got %s", shown(v))
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, paramError("timezone", "unknown time zone %q; want an IANA name such as UTC or Europe/Paris", tz)
	}
	return loc, nil
}

// parseExpression parses expr with cronParser, refusing what the timers cannot honour, and
// explains a refusal by the field at fault.
func parseExpression(expr string) (sp *cron.SpecSchedule, err error) {
	trimmed := strings.TrimSpace(expr)
	if trimmed == "" {
		return nil, fmt.Errorf("required: a cron expression of %s", cronForm)
	}
	// The zone comes from the timezone parameter; the parser's own prefix also panics on an
	// expression with nothing after it.
	if upper := strings.ToUpper(trimmed); strings.HasPrefix(upper, "TZ=") || strings.HasPrefix(upper, "CRON_TZ=") {
		return nil, fmt.Errorf("%q: give the time zone in the timezone parameter", expr)
	}
	defer func() {
		// A parser bug must cost one rule, not the process.
		if r := recover(); r != nil {
			sp, err = nil, fmt.Errorf("%q: %v", expr, r)
		}
	}()
	spec, err := cronParser.Parse(trimmed)
	if err != nil {
		return nil, explainCron(trimmed, err)
	}
	sp, ok := spec.(*cron.SpecSchedule)
	if !ok {
		// @every counts from when it was parsed, which two leaders would not agree on.
		return nil, fmt.Errorf("%q: @every is not supported; use core.intervaltimer", expr)
	}
	return sp, nil
}

var descriptors = "@yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"

// explainCron turns the parser's refusal of expr into one naming the field at fault. Each
// field is put alone, among stars, through the same parser: the first that fails is the one.
func explainCron(expr string, err error) error {
	if strings.HasPrefix(expr, "@") {
		return fmt.Errorf("unknown descriptor %q; want %s", expr, descriptors)
	}
	fields := strings.Fields(expr)
	if len(fields) != 5 && len(fields) != 6 {
		return fmt.Errorf("%q has %d fields; want %s", expr, len(fields), cronForm)
	}
	bounds := cronFields
	if len(fields) == 6 {
		bounds = append([]cronField{secondField}, cronFields...)
	}
	for i, f := range fields {
		probe := make([]string, len(fields))
		for j := range probe {
			probe[j] = "*"
		}
		probe[i] = f
		if _, perr := cronParser.Parse(strings.Join(probe, " ")); perr != nil {
			return fmt.Errorf("field %d (%s): %s", i+1, bounds[i].name, bounds[i].explain(f, perr))
		}
	}
	return fmt.Errorf("%q: %w", expr, err)
}

// The parser's refusals of one field, as robfig/cron v3 words them.
var (
	outOfRange = regexp.MustCompile(`^(?:beginning|end) of range \((\d+)\) (?:below minimum|above maximum) \(\d+\)`)
	backwards  = regexp.MustCompile(`^beginning of range \((\d+)\) beyond end of range \((\d+)\)`)
	notNumber  = regexp.MustCompile(`^failed to parse int from ([^:]*):`)
	badStep    = regexp.MustCompile(`^(?:step of range should be a positive number|negative number)`)
)

func (f cronField) explain(text string, err error) string {
	msg := err.Error()
	if m := outOfRange.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s is out of range %d-%d", m[1], f.min, f.max)
	}
	if m := backwards.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%q: the range %s-%s ends before it begins", text, m[1], m[2])
	}
	if m := notNumber.FindStringSubmatch(msg); m != nil {
		want := fmt.Sprintf("a number from %d to %d", f.min, f.max)
		if f.names != "" {
			want += " or " + f.names
		}
		return fmt.Sprintf("%s is not %s", strconv.Quote(m[1]), want)
	}
	if badStep.MatchString(msg) {
		return fmt.Sprintf("%q: a step after / must be a whole number of at least 1", text)
	}
	return msg
}

func (s cronSchedule) Next(t time.Time) time.Time {
	// Next returns the zero time when nothing matches within five years (February 30th).
	return s.spec.Next(t.In(s.loc))
}

func (s cronSchedule) Payload(at time.Time, count int) map[string]any {
	return map[string]any{"type": "cron", "fired_at": at.In(s.loc).Format(time.RFC3339), "execution_count": count}
}
