package sensor

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

func rule(trigger, params string) store.Rule {
	return store.Rule{Ref: "demo.timer", TriggerRef: trigger, TriggerParams: json.RawMessage(params)}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return at
}

// ticks returns the first n due times after now.
func ticks(t *testing.T, s schedule, now time.Time, n int) []string {
	t.Helper()
	var out []string
	for due := s.next(now); !due.IsZero() && len(out) < n; due = s.next(due) {
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
		s, err := plan(rule(IntervalTimer, c.params))
		require.NoError(t, err, name)
		now := mustTime(t, c.now)
		require.Equal(t, c.want, ticks(t, s, now, len(c.want)), name)

		// Two leaders that start at different moments agree on the ticks: from anywhere in
		// the interval before a tick, that tick comes next.
		due := s.next(now)
		every := time.Duration(c.every) * time.Second
		for _, from := range []time.Time{due.Add(-every), due.Add(-every / 2), due.Add(-time.Millisecond)} {
			require.True(t, due.Equal(s.next(from)), "%s: from %s", name, from)
		}
		p := s.payload(s.next(now), 3)
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
		"no match":           {`{"expression": "0 0 30 2 *"}`, nil},
	}
	for name, c := range cases {
		s, err := plan(rule(CronTimer, c.params))
		require.NoError(t, err, name)
		var got []string
		for due := s.next(now); !due.IsZero() && len(got) < len(c.want); due = s.next(due) {
			got = append(got, s.payload(due, 1)["fired_at"].(string))
		}
		require.Equal(t, c.want, got, name)
	}

	s, err := plan(rule(CronTimer, `{"expression": "0 9 * * *", "timezone": "Europe/Paris"}`))
	require.NoError(t, err)
	due := s.next(now)
	require.True(t, due.Equal(mustTime(t, "2030-01-02T08:00:00Z")))
	require.Equal(t, map[string]any{"type": "cron", "fired_at": "2030-01-02T09:00:00+01:00", "execution_count": 4}, s.payload(due, 4))
}

func TestDateTimeSchedule(t *testing.T) {
	t.Parallel()
	s, err := plan(rule(DateTimeTimer, `{"fire_at": "2030-01-02T15:04:05+02:00"}`))
	require.NoError(t, err)
	at := mustTime(t, "2030-01-02T13:04:05Z")

	require.True(t, s.next(at.Add(-time.Hour)).Equal(at), "in the future: fires at fire_at")
	require.True(t, s.next(at).IsZero(), "once")
	require.True(t, s.next(at.Add(time.Second)).IsZero(), "in the past: never")
	require.Equal(t, map[string]any{"type": "datetime", "fired_at": "2030-01-02T15:04:05+02:00"}, s.payload(s.next(at.Add(-time.Hour)), 1))
}

func TestBadTriggerParams(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		rule store.Rule
		want string
	}{
		"no interval":      {rule(IntervalTimer, `{}`), "interval must be an integer greater than 0"},
		"zero interval":    {rule(IntervalTimer, `{"interval": 0}`), "interval must be an integer greater than 0"},
		"negative":         {rule(IntervalTimer, `{"interval": -5}`), "interval must be an integer greater than 0"},
		"fraction":         {rule(IntervalTimer, `{"interval": 1.5}`), "interval must be an integer greater than 0"},
		"string interval":  {rule(IntervalTimer, `{"interval": "5"}`), "interval must be an integer greater than 0"},
		"bad unit":         {rule(IntervalTimer, `{"interval": 5, "unit": "weeks"}`), "unit must be seconds, minutes, hours or days"},
		"huge":             {rule(IntervalTimer, `{"interval": 1e300, "unit": "days"}`), "at most 100 years"},
		"not json":         {rule(IntervalTimer, `[1]`), "decode trigger_params"},
		"no expression":    {rule(CronTimer, `{}`), "expression is required"},
		"bad cron":         {rule(CronTimer, `{"expression": "61 * * * *"}`), `expression "61 * * * *"`},
		"too many fields":  {rule(CronTimer, `{"expression": "* * * * * * *"}`), "expression"},
		"every":            {rule(CronTimer, `{"expression": "@every 5s"}`), "@every is not supported"},
		"tz prefix alone":  {rule(CronTimer, `{"expression": "CRON_TZ=UTC"}`), "timezone parameter"},
		"bad timezone":     {rule(CronTimer, `{"expression": "* * * * *", "timezone": "Mars/Olympus"}`), `timezone "Mars/Olympus"`},
		"local timezone":   {rule(CronTimer, `{"expression": "* * * * *", "timezone": "Local"}`), "IANA time zone name"},
		"no fire_at":       {rule(DateTimeTimer, `{}`), "fire_at must be an RFC 3339 time"},
		"bad fire_at":      {rule(DateTimeTimer, `{"fire_at": "tomorrow"}`), "fire_at must be an RFC 3339 time"},
		"not a timer":      {rule("core.webhook", `{"url": "x"}`), "not a timer"},
		"empty expression": {rule(CronTimer, `{"expression": "  "}`), "expression is required"},
	}
	for name, c := range cases {
		_, err := plan(c.rule)
		require.ErrorContains(t, err, c.want, name)
	}
}
