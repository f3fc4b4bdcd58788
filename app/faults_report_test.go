package app_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// faultEvidence is what the database and the marks say once a scenario is over.
type faultEvidence struct {
	eventOfSeq map[int64]int64 // the load's sequence number → its event
	events     int
	executions []execRow
	byEvent    map[int64][]execRow
	// unexecuted describes each enforcement without an execution.
	unexecuted map[int64]string
	marks      []mark
}

type execRow struct {
	id         int64
	action     string
	status     string
	reason     string
	worker     string
	admittedAt *time.Time
	event      *int64
	rule       string
}

// collectEvidence reads the database, then the marks: an action ends (and marks its end)
// before its worker records it, so every execution the database shows ended has its end
// mark in what is read after.
func collectEvidence(pool *pgxpool.Pool, marksPath string) (*faultEvidence, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := &faultEvidence{eventOfSeq: map[int64]int64{}, byEvent: map[int64][]execRow{}, unexecuted: map[int64]string{}}
	rows, err := pool.Query(ctx, `SELECT id, coalesce((payload->'body'->>'seq')::bigint, -1) FROM attune.event`)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	var id, seq int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
		ev.events++
		ev.eventOfSeq[seq] = id
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	rows, err = pool.Query(ctx, `SELECT x.id, x.action_ref, x.status, coalesce(x.reason, ''), coalesce(w.name, ''),
			x.admitted_at, en.event, coalesce(en.rule_ref, '')
		FROM attune.execution x
		LEFT JOIN attune.enforcement en ON en.id = x.enforcement
		LEFT JOIN attune.worker w ON w.id = x.worker
		ORDER BY x.id`)
	if err != nil {
		return nil, fmt.Errorf("read executions: %w", err)
	}
	ev.executions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (execRow, error) {
		var x execRow
		return x, row.Scan(&x.id, &x.action, &x.status, &x.reason, &x.worker, &x.admittedAt, &x.event, &x.rule)
	})
	if err != nil {
		return nil, fmt.Errorf("read executions: %w", err)
	}
	for _, x := range ev.executions {
		if x.event != nil {
			ev.byEvent[*x.event] = append(ev.byEvent[*x.event], x)
		}
	}
	rows, err = pool.Query(ctx, `SELECT en.event, en.id, en.status, coalesce(en.reason, '') FROM attune.enforcement en
		WHERE NOT EXISTS (SELECT 1 FROM attune.execution x WHERE x.enforcement = en.id)`)
	if err != nil {
		return nil, fmt.Errorf("read enforcements: %w", err)
	}
	var event, enf int64
	var status, reason string
	if _, err := pgx.ForEachRow(rows, []any{&event, &enf, &status, &reason}, func() error {
		ev.unexecuted[event] = fmt.Sprintf("enforcement %d %s %s", enf, status, reason)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read enforcements: %w", err)
	}
	ev.marks, err = readMarks(marksPath)
	return ev, err
}

// faultCheck is one promise and what the scenario measured of it.
type faultCheck struct {
	name   string
	figure string
	failed []string
}

// report prints the scenario's figures and checks as a table, fails the test once per
// broken promise, naming what broke it, and returns the checks.
func (s *faultRun) report(ev *faultEvidence, settled time.Duration, last time.Time, leftovers []actionProc) []faultCheck {
	results := s.load.all()
	checks := []faultCheck{
		checkAccepted(results, ev),
		checkRefusedRecordedNothing(results, ev),
		checkRanOnce(ev),
		checkEnded(ev),
		s.checkRecordedAsRun(ev),
		s.checkNoOrphans(ev, leftovers),
		checkAdmissionOrder(ev, "faults.queued"),
		s.checkAnswered(results),
		checkSettled(settled),
		s.checkNoUnaskedExits(),
		s.checkNoDeadLetters(),
	}
	if s.extraChecks != nil {
		checks = append(checks, s.extraChecks()...)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fault suite, scenario %s (load %d webhooks/s, bound %s)\n\nfaults (time after the load began):\n", s.name, s.perSec, requestBound)
	s.mu.Lock()
	for _, f := range s.faults {
		back := "never back"
		if at := f.back(); !at.IsZero() {
			back = fmt.Sprintf("back after %.1fs", at.Sub(f.at).Seconds())
		}
		if f.note != "" {
			back += " (" + f.note + ")"
		}
		if f.err != nil {
			back += fmt.Sprintf(" (error: %v)", f.err)
		}
		fmt.Fprintf(&b, "  %+7.1fs  %-32s %s\n", f.at.Sub(s.begin).Seconds(), f.what, back)
	}
	s.mu.Unlock()
	b.WriteString("\nfigures:\n")
	for _, f := range s.figures(results, ev) {
		fmt.Fprintf(&b, "  %-26s %s\n", f[0], f[1])
	}
	b.WriteString("\nchecks:\n")
	for _, c := range checks {
		fmt.Fprintf(&b, "  %-4s  %-48s %s\n", c.verdict(), c.name, c.figure)
	}
	s.t.Logf("%s", b.String())
	for _, c := range checks {
		if len(c.failed) > 0 {
			s.t.Errorf("%s: %s\n  %s", c.name, c.figure, strings.Join(capList(c.failed, 20), "\n  "))
		}
	}
	return checks
}

func (c faultCheck) verdict() string {
	if len(c.failed) > 0 {
		return "FAIL"
	}
	return "ok"
}

// summarize puts the scenarios' checks side by side, in the shape of docs/reliability.md's
// table.
func summarize(checks map[string][]faultCheck, scenarios ...string) string {
	var b strings.Builder
	b.WriteString("fault suite, every scenario:\n")
	fmt.Fprintf(&b, "  %-48s", "check")
	for _, sc := range scenarios {
		fmt.Fprintf(&b, " | %-44s", sc)
	}
	b.WriteString("\n")
	var names []string
	for _, sc := range scenarios {
		for _, c := range checks[sc] {
			if !slices.Contains(names, c.name) {
				names = append(names, c.name)
			}
		}
	}
	for _, name := range names {
		fmt.Fprintf(&b, "  %-48s", name)
		for _, sc := range scenarios {
			cell := "not run"
			for _, c := range checks[sc] {
				if c.name == name {
					cell = c.verdict() + " " + c.figure
				}
			}
			fmt.Fprintf(&b, " | %-44s", cell)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (s *faultRun) figures(results []webhookResult, ev *faultEvidence) [][2]string {
	byStatus := map[int]int{}
	var latencies []time.Duration
	cut, unanswered := 0, 0
	for _, r := range results {
		switch {
		case r.status != 0:
			byStatus[r.status]++
			latencies = append(latencies, r.latency)
		case s.cutByKill(r):
			cut++
		default:
			unanswered++
		}
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Round(time.Millisecond)
	}
	statuses := map[string]int{}
	for _, x := range ev.executions {
		statuses[x.status]++
	}
	var kills []string
	s.mu.Lock()
	for _, k := range s.kills {
		longest := time.Duration(0)
		for _, d := range k.outlived(0) {
			longest = max(longest, d)
		}
		// The marks say when an action of the killed process last got to its end.
		ended, last := "none reached its end after the kill", -1.0
		for _, m := range ev.marks {
			if !m.start && m.incarnation == k.incarnation && m.uptime >= k.atUptime && m.uptime > last {
				last = m.uptime
				ended = fmt.Sprintf("the last to reach its end did %.2fs after the kill", m.uptime-k.atUptime)
			}
		}
		kills = append(kills, fmt.Sprintf("%s had %d actions running, the last seen alive %.3fs after the kill; %s",
			k.incarnation, k.running, longest.Seconds(), ended))
	}
	s.mu.Unlock()
	return [][2]string{
		{"webhook requests", fmt.Sprintf("%d: %d accepted (202), %d refused (503), %d other, %d cut by a kill, %d unanswered",
			len(results), byStatus[http.StatusAccepted], byStatus[http.StatusServiceUnavailable],
			len(latencies)-byStatus[http.StatusAccepted]-byStatus[http.StatusServiceUnavailable], cut, unanswered)},
		{"answer time", fmt.Sprintf("p50 %s, p99 %s, max %s", pct(0.5), pct(0.99), pct(1))},
		{"events, executions", fmt.Sprintf("%d, %d %v", ev.events, len(ev.executions), statuses)},
		{"marks", fmt.Sprintf("%d lines", len(ev.marks))},
		{"worker kills", strings.Join(kills, "; ")},
	}
}

// cutByKill says whether a request without an answer went to an api that was signalled
// while it waited, or just before it was sent: the load picks an api it saw up, and the kill
// may land between that pick and the send (a connection reset then answers it).
func (s *faultRun) cutByKill(r webhookResult) bool {
	if r.api == nil {
		return false
	}
	end := r.sent.Add(r.latency)
	r.api.mu.Lock()
	defer r.api.mu.Unlock()
	for _, at := range r.api.asked {
		if !at.Before(r.sent.Add(-killRaceWindow)) && !at.After(end) {
			return true
		}
	}
	return false
}

// killRaceWindow is how long before a request's send a kill of its api still counts as what
// cut it: the load's pick of an api races the kill by far less.
const killRaceWindow = time.Second

func capList(items []string, n int) []string {
	if len(items) <= n {
		return items
	}
	return append(slices.Clone(items[:n]), fmt.Sprintf("... and %d more", len(items)-n))
}

func checkSettled(settled time.Duration) faultCheck {
	c := faultCheck{name: "settled within " + settleBound.String() + " of the last fault"}
	switch {
	case settled < 0:
		c.figure = fmt.Sprintf("not settled %s after the last fault", giveUpAfter)
		c.failed = []string{c.figure}
	case settled > settleBound:
		c.figure = fmt.Sprintf("%.1fs", settled.Seconds())
		c.failed = []string{"settled " + c.figure + " after the last fault"}
	default:
		c.figure = fmt.Sprintf("%.1fs", settled.Seconds())
	}
	return c
}

func (s *faultRun) checkNoUnaskedExits() faultCheck {
	c := faultCheck{name: "no process exited unasked"}
	exits := s.c.unaskedExits()
	for _, e := range exits {
		c.failed = append(c.failed, fmt.Sprintf("%s.%d exited with code %d at %+.1fs:\n%s", e.member, e.incarnation, e.code,
			e.at.Sub(s.begin).Seconds(), e.tail))
	}
	c.figure = fmt.Sprintf("%d exits", len(exits))
	return c
}

// checkNoDeadLetters counts the messages the processes gave up ("dead-lettering ..." in
// broker/dispatch.go): under these faults every message can be handled once the services are
// back, so none should be.
func (s *faultRun) checkNoDeadLetters() faultCheck {
	c := faultCheck{name: "no message dead-lettered"}
	deadLettering := func(rec map[string]any) bool {
		msg, _ := rec["msg"].(string)
		return strings.HasPrefix(msg, "dead-lettering")
	}
	for _, m := range s.c.all() {
		for i, p := range m.incarnations() {
			for _, rec := range p.recordsWhere(deadLettering) {
				c.failed = append(c.failed, fmt.Sprintf("%s.%d: %v %v after %v attempts: %v", m.name, i+1,
					rec["message_type"], rec["message_id"], rec["attempts"], rec["err"]))
			}
		}
	}
	c.figure = fmt.Sprintf("%d messages", len(c.failed))
	return c
}
