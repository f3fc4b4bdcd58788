package schedule

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return at
}

// ticks returns the first n due times after now.
func ticks(t *testing.T, s Schedule, now time.Time, n int) []string {
	t.Helper()
	var out []string
	for due := s.Next(now); !due.IsZero() && len(out) < n; due = s.Next(due) {
		out = append(out, due.Format(time.RFC3339))
	}
	return out
}

func TestIntervalScheduleIsAlignedToTheEpoch(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		params string
		now    string
		want   []string
		every  int64
	}{
		"seconds by default": {`{"interval": 5}`, "2030-01-02T03:04:06.5Z", []string{"2030-01-02T03:04:10Z", "2030-01-02T03:04:15Z"}, 5},
		// A tick exactly now has been fired: the next is one interval on.
		"on a tick":           {`{"interval": 5, "unit": "seconds"}`, "2030-01-02T03:04:10Z", []string{"2030-01-02T03:04:15Z"}, 5},
		"minutes":             {`{"interval": 15, "unit": "minutes"}`, "2030-01-02T03:04:06Z", []string{"2030-01-02T03:15:00Z", "2030-01-02T03:30:00Z"}, 900},
		"hours":               {`{"interval": 2, "unit": "hours"}`, "2030-01-02T03:04:06Z", []string{"2030-01-02T04:00:00Z", "2030-01-02T06:00:00Z"}, 7200},
		"days at midnight":    {`{"interval": 1, "unit": "days"}`, "2030-01-02T03:04:06Z", []string{"2030-01-03T00:00:00Z", "2030-01-04T00:00:00Z"}, 86400},
		"7s from the epoch":   {`{"interval": 7}`, "1970-01-01T00:00:13Z", []string{"1970-01-01T00:00:14Z", "1970-01-01T00:00:21Z"}, 7},
		"before the epoch":    {`{"interval": 7}`, "1969-12-31T23:59:55Z", []string{"1970-01-01T00:00:00Z", "1970-01-01T00:00:07Z"}, 7},
		"zone does not count": {`{"interval": 1, "unit": "hours"}`, "2030-01-02T03:04:06+05:30", []string{"2030-01-01T22:00:00Z"}, 3600},
	}
	for name, c := range cases {
		s, err := Parse(IntervalTimer, json.RawMessage(c.params))
		require.NoError(t, err, name)
		now := mustTime(t, c.now)
		require.Equal(t, c.want, ticks(t, s, now, len(c.want)), name)

		// Two leaders that start at different moments agree on the ticks: from anywhere in
		// the interval before a tick, that tick comes next.
		due := s.Next(now)
		every := time.Duration(c.every) * time.Second
		for _, from := range []time.Time{due.Add(-every), due.Add(-every / 2), due.Add(-time.Millisecond)} {
			require.True(t, due.Equal(s.Next(from)), "%s: from %s", name, from)
		}
		p := s.Payload(s.Next(now), 3)
		require.Equal(t, map[string]any{"type": "interval", "interval_seconds": c.every, "fired_at": c.want[0], "execution_count": 3}, p, name)
	}
}

func TestCronSchedule(t *testing.T) {
	t.Parallel()
	now := mustTime(t, "2030-01-02T03:04:06Z") // a Wednesday
	cases := map[string]struct {
		params string
		want   []string
	}{
		"5 fields in UTC":   {`{"expression": "*/15 * * * *"}`, []string{"2030-01-02T03:15:00Z", "2030-01-02T03:30:00Z"}},
		"6 fields, seconds": {`{"expression": "*/20 * * * * *"}`, []string{"2030-01-02T03:04:20Z", "2030-01-02T03:04:40Z", "2030-01-02T03:05:00Z"}},
		// 09:00 in Paris is 08:00 UTC in winter; fired_at is given in the timer's zone.
		"time zone":          {`{"expression": "0 9 * * *", "timezone": "Europe/Paris"}`, []string{"2030-01-02T09:00:00+01:00", "2030-01-03T09:00:00+01:00"}},
		"6 fields in a zone": {`{"expression": "30 0 9 * * MON", "timezone": "America/New_York"}`, []string{"2030-01-07T09:00:30-05:00"}},
		"descriptor":         {`{"expression": "@daily"}`, []string{"2030-01-03T00:00:00Z"}},
	}
	for name, c := range cases {
		s, err := Parse(CronTimer, json.RawMessage(c.params))
		require.NoError(t, err, name)
		var got []string
		for due := s.Next(now); !due.IsZero() && len(got) < len(c.want); due = s.Next(due) {
			got = append(got, s.Payload(due, 1)["fired_at"].(string))
		}
		require.Equal(t, c.want, got, name)
	}

	s, err := Parse(CronTimer, json.RawMessage(`{"expression": "0 9 * * *", "timezone": "Europe/Paris"}`))
	require.NoError(t, err)
	due := s.Next(now)
	require.True(t, due.Equal(mustTime(t, "2030-01-02T08:00:00Z")))
	require.Equal(t, map[string]any{"type": "cron", "fired_at": "2030-01-02T09:00:00+01:00", "execution_count": 4}, s.Payload(due, 4))
}

func TestDateTimeSchedule(t *testing.T) {
	t.Parallel()
	s, err := Parse(DateTimeTimer, json.RawMessage(`{"fire_at": "2030-01-02T15:04:05+02:00"}`))
	require.NoError(t, err)
	at := mustTime(t, "2030-01-02T13:04:05Z")

	require.True(t, s.Next(at.Add(-time.Hour)).Equal(at), "in the future: fires at fire_at")
	require.True(t, s.Next(at).IsZero(), "once")
	require.True(t, s.Next(at.Add(time.Second)).IsZero(), "in the past: never")
	require.Equal(t, map[string]any{"type": "datetime", "fired_at": "2030-01-02T15:04:05+02:00"}, s.Payload(s.Next(at.Add(-time.Hour)), 1))
}

// Every refusal names the parameter and says what is wanted; cron fields are named by their
// place and meaning, as the parser bounds them.
func TestBadTriggerParams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		trigger, params string
		param, want     string
	}{
		{IntervalTimer, `{}`, "interval", "required: how many units between two firings, an integer greater than 0"},
		{IntervalTimer, `{"interval": 0}`, "interval", "want an integer greater than 0, got 0"},
		{IntervalTimer, `{"interval": -5}`, "interval", "want an integer greater than 0, got -5"},
		{IntervalTimer, `{"interval": 1.5}`, "interval", "want an integer greater than 0, got 1.5"},
		{IntervalTimer, `{"interval": "5"}`, "interval", `want an integer greater than 0, got "5"`},
		{IntervalTimer, `{"interval": 5, "unit": "weeks"}`, "unit", `want seconds, minutes, hours or days, got "weeks"`},
		{IntervalTimer, `{"interval": 1e300, "unit": "days"}`, "interval", "want at most 100 years, got 1e+300 days"},
		{IntervalTimer, `[1]`, "", "decode trigger_params: json: cannot unmarshal array into Go value of type map[string]interface {}"},
		{CronTimer, `{}`, "expression", "required: a cron expression of " + cronForm},
		{CronTimer, `{"expression": "  "}`, "expression", "required: a cron expression of " + cronForm},
		{CronTimer, `{"expression": 5}`, "expression", "want a cron expression of " + cronForm + ", got 5"},
		{CronTimer, `{"expression": "61 * * * *"}`, "expression", "field 1 (minute): 61 is out of range 0-59"},
		{CronTimer, `{"expression": "0 24 * * *"}`, "expression", "field 2 (hour): 24 is out of range 0-23"},
		{CronTimer, `{"expression": "0 0 0 * *"}`, "expression", "field 3 (day of month): 0 is out of range 1-31"},
		{CronTimer, `{"expression": "0 0 1 13 *"}`, "expression", "field 4 (month): 13 is out of range 1-12"},
		{CronTimer, `{"expression": "0 0 * * 7"}`, "expression", "field 5 (day of week): 7 is out of range 0-6"},
		{CronTimer, `{"expression": "60 0 9 * * *"}`, "expression", "field 1 (second): 60 is out of range 0-59"},
		{CronTimer, `{"expression": "0 1-70 * * * *"}`, "expression", "field 2 (minute): 70 is out of range 0-59"},
		{CronTimer, `{"expression": "0 9-5 * * *"}`, "expression", `field 2 (hour): "9-5": the range 9-5 ends before it begins`},
		{CronTimer, `{"expression": "*/0 * * * *"}`, "expression", `field 1 (minute): "*/0": a step after / must be a whole number of at least 1`},
		{CronTimer, `{"expression": "0 0 * FOO *"}`, "expression", `field 4 (month): "FOO" is not a number from 1 to 12 or a month name such as JAN`},
		{CronTimer, `{"expression": "x * * * *"}`, "expression", `field 1 (minute): "x" is not a number from 0 to 59`},
		{CronTimer, `{"expression": "1-2-3 * * * *"}`, "expression", "field 1 (minute): too many hyphens: 1-2-3"},
		{CronTimer, `{"expression": "* * * *"}`, "expression", `"* * * *" has 4 fields; want ` + cronForm},
		{CronTimer, `{"expression": "* * * * * * *"}`, "expression", `"* * * * * * *" has 7 fields; want ` + cronForm},
		{CronTimer, `{"expression": "@sometimes"}`, "expression", `unknown descriptor "@sometimes"; want ` + descriptors},
		{CronTimer, `{"expression": "@every 5s"}`, "expression", `"@every 5s": @every is not supported; use core.intervaltimer`},
		{CronTimer, `{"expression": "CRON_TZ=UTC"}`, "expression", `"CRON_TZ=UTC": give the time zone in the timezone parameter`},
		{CronTimer, `{"expression": "0 0 30 2 *"}`, "expression", `"0 0 30 2 *" never fires: no date in the next five years matches it`},
		{CronTimer, `{"expression": "* * * * *", "timezone": "Mars/Olympus"}`, "timezone", `unknown time zone "Mars/Olympus"; want an IANA name such as UTC or Europe/Paris`},
		{CronTimer, `{"expression": "* * * * *", "timezone": "Local"}`, "timezone", `want an IANA time zone name such as UTC or Europe/Paris, got "Local"`},
		{CronTimer, `{"expression": "* * * * *", "timezone": 1}`, "timezone", `want an IANA time zone name such as UTC or Europe/Paris, got 1`},
		{DateTimeTimer, `{}`, "fire_at", "required: when to fire, an RFC 3339 time such as 2030-01-02T15:04:05Z"},
		{DateTimeTimer, `{"fire_at": "tomorrow"}`, "fire_at",
			`"tomorrow" is not an RFC 3339 time; want a date, a time and a zone, such as 2030-01-02T15:04:05Z or 2030-01-02T15:04:05+02:00`},
		{DateTimeTimer, `{"fire_at": "2030-01-02T15:04:05"}`, "fire_at",
			`"2030-01-02T15:04:05" is not an RFC 3339 time; want a date, a time and a zone, such as 2030-01-02T15:04:05Z or 2030-01-02T15:04:05+02:00`},
		{DateTimeTimer, `{"fire_at": 1893553445}`, "fire_at", "want an RFC 3339 time such as 2030-01-02T15:04:05Z, got 1893553445"},
		{"core.webhook", `{"url": "x"}`, "", "trigger core.webhook is not a timer"},
	}
	for _, c := range cases {
		_, err := Parse(c.trigger, json.RawMessage(c.params))
		var e *Error
		require.ErrorAs(t, err, &e, c.params)
		require.Equal(t, c.param, e.Param, c.params)
		require.EqualError(t, e.Err, c.want, c.params)
	}
}

// What the parser accepts besides plain numbers still parses: names, lists, ranges, steps, a
// question mark, descriptors and surrounding spaces.
func TestCronForms(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{"0 9 * JAN-MAR MON-FRI", "0,30 8-18/2 ? * *", "*/5 * * * * *", "@hourly", " 0 0 * * * ", "0 0 29 2 *"} {
		_, err := Parse(CronTimer, json.RawMessage(`{"expression": "`+expr+`"}`))
		require.NoError(t, err, expr)
	}
}
