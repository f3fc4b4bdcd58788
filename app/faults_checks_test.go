package app_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The fault suite's checks: each promise of docs/reliability.md measured on one scenario,
// failing with what broke it.

func checkAccepted(results []webhookResult, ev *faultEvidence) faultCheck {
	c := faultCheck{name: "every accepted event has its executions"}
	accepted := 0
	for _, r := range results {
		if r.status != http.StatusAccepted {
			continue
		}
		accepted++
		switch id, ok := ev.eventOfSeq[r.seq]; {
		case !ok:
			c.failed = append(c.failed, fmt.Sprintf("request %d was accepted (event %d), but no event has it", r.seq, r.eventID))
		case id != r.eventID:
			c.failed = append(c.failed, fmt.Sprintf("request %d was answered event %d, but is event %d", r.seq, r.eventID, id))
		case len(ev.byEvent[id]) == 0:
			why := ev.unexecuted[id]
			if why == "" {
				why = "no enforcement"
			}
			c.failed = append(c.failed, fmt.Sprintf("event %d (request %d) has no execution: %s", id, r.seq, why))
		}
	}
	c.figure = fmt.Sprintf("%d of %d", accepted-len(c.failed), accepted)
	return c
}

func checkRefusedRecordedNothing(results []webhookResult, ev *faultEvidence) faultCheck {
	c := faultCheck{name: "a refused request (503) recorded nothing"}
	refused, unanswered, unansweredRecorded := 0, 0, 0
	for _, r := range results {
		_, recorded := ev.eventOfSeq[r.seq]
		switch {
		case r.status == http.StatusServiceUnavailable:
			refused++
			if recorded {
				c.failed = append(c.failed, fmt.Sprintf("request %d was refused, yet is event %d", r.seq, ev.eventOfSeq[r.seq]))
			}
		case r.status == 0 && r.api != nil:
			unanswered++
			if recorded {
				unansweredRecorded++
			}
		}
	}
	c.figure = fmt.Sprintf("%d of %d refused recorded; %d of %d unanswered recorded", len(c.failed), refused, unansweredRecorded, unanswered)
	return c
}

func checkRanOnce(ev *faultEvidence) faultCheck {
	c := faultCheck{name: "no execution ran twice"}
	starts := map[int64][]string{}
	for _, m := range ev.marks {
		if m.start {
			starts[m.execution] = append(starts[m.execution], fmt.Sprintf("pid %d on %s", m.pid, m.incarnation))
		}
	}
	for _, x := range ev.executions {
		if s := starts[x.id]; len(s) > 1 {
			c.failed = append(c.failed, fmt.Sprintf("execution %d started %d times: %s", x.id, len(s), strings.Join(s, ", ")))
		}
	}
	for event, xs := range ev.byEvent {
		perRule := map[string][]int64{}
		for _, x := range xs {
			perRule[x.rule] = append(perRule[x.rule], x.id)
		}
		for rule, ids := range perRule {
			if len(ids) > 1 {
				c.failed = append(c.failed, fmt.Sprintf("event %d has %d executions of rule %s: %v", event, len(ids), rule, ids))
			}
		}
	}
	slices.Sort(c.failed)
	c.figure = fmt.Sprintf("%d twice", len(c.failed))
	return c
}

func checkEnded(ev *faultEvidence) faultCheck {
	c := faultCheck{name: "no execution left unfinished"}
	for _, x := range ev.executions {
		if !terminalStatus(x.status) {
			c.failed = append(c.failed, fmt.Sprintf("execution %d is still %s (worker %q)", x.id, x.status, x.worker))
		}
	}
	c.figure = fmt.Sprintf("%d unfinished", len(c.failed))
	return c
}

// checkRecordedAsRun compares each ended execution's status with how its action ended by
// its own account (one still under way is checkEnded's). An action that exited 0 within a
// second of its worker's kill, before it or after it while the worker's companion was ending
// the worker's actions, is counted apart: nobody was left to record it. (One that ran on
// longer after the kill fails this check and the one on orphans.)
func (s *faultRun) checkRecordedAsRun(ev *faultEvidence) faultCheck {
	c := faultCheck{name: "no completed action recorded otherwise"}
	ends := map[int64]mark{}
	for _, m := range ev.marks {
		if !m.start {
			ends[m.execution] = m
		}
	}
	killedAt := s.killUptimes()
	excused := 0
	for _, x := range ev.executions {
		e, ended := ends[x.id]
		switch {
		case !terminalStatus(x.status):
		case ended && e.exit == 0 && x.status != "completed":
			if at, killed := killedAt[e.incarnation]; killed && e.uptime <= at+1 && e.uptime > at-1 {
				excused++
				continue
			}
			c.failed = append(c.failed, fmt.Sprintf("execution %d: its action (pid %d on %s) exited 0 at %+.2fs, recorded %s: %s",
				x.id, e.pid, e.incarnation, e.uptime-s.beginUptime, x.status, x.reason))
		case ended && e.exit != 0 && x.status == "completed":
			c.failed = append(c.failed, fmt.Sprintf("execution %d: its action (pid %d on %s) exited %d, recorded completed", x.id, e.pid, e.incarnation, e.exit))
		case !ended && x.status == "completed":
			c.failed = append(c.failed, fmt.Sprintf("execution %d recorded completed, but its action never reached its end", x.id))
		}
	}
	c.figure = fmt.Sprintf("%d recorded otherwise; %d ended as their worker was killed", len(c.failed), excused)
	return c
}

// checkNoOrphans looks for action processes of a killed worker alive more than orphanGrace
// after the kill, in /proc and in the marks, and for any process of the scenario left once
// the cluster stopped.
func (s *faultRun) checkNoOrphans(ev *faultEvidence, leftovers []actionProc) faultCheck {
	c := faultCheck{name: fmt.Sprintf("no action outlived its worker by %s", orphanGrace)}
	running := 0
	s.mu.Lock()
	kills := slices.Clone(s.kills)
	s.mu.Unlock()
	for _, k := range kills {
		running += k.running
		for p, d := range k.outlived(orphanGrace) {
			c.failed = append(c.failed, fmt.Sprintf("pid %d (execution %s, %s) of the killed %s alive %.1fs after the kill",
				p.pid, p.execution, p.cmdline, k.incarnation, d.Seconds()))
		}
		for _, m := range ev.marks {
			if !m.start && m.incarnation == k.incarnation && m.uptime > k.atUptime+orphanGrace.Seconds() {
				c.failed = append(c.failed, fmt.Sprintf("execution %d (pid %d) of the killed %s reached its end %.1fs after the kill",
					m.execution, m.pid, k.incarnation, m.uptime-k.atUptime))
			}
		}
	}
	for _, p := range leftovers {
		c.failed = append(c.failed, fmt.Sprintf("pid %d (%s, execution %q, %s) still alive %s after the cluster stopped", p.pid, p.cmdline, p.execution, p.incarnation, orphanGrace))
	}
	slices.Sort(c.failed)
	c.figure = fmt.Sprintf("%d findings; %d actions were running at the kills", len(c.failed), running)
	return c
}

func (s *faultRun) killUptimes() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{}
	for _, k := range s.kills {
		out[k.incarnation] = k.atUptime
	}
	return out
}

// checkAdmissionOrder holds one queue (an action under a policy without groups) to FIFO:
// admitted_at never decreases along ids.
func checkAdmissionOrder(ev *faultEvidence, action string) faultCheck {
	c := faultCheck{name: "admissions in id order (" + action + ")"}
	var admitted []execRow
	for _, x := range ev.executions {
		if x.action == action && x.admittedAt != nil {
			admitted = append(admitted, x)
		}
	}
	for i, x := range admitted {
		var overtook []string
		for _, y := range admitted[i+1:] {
			if y.admittedAt.Before(*x.admittedAt) {
				overtook = append(overtook, fmt.Sprintf("%d (%s earlier)", y.id, x.admittedAt.Sub(*y.admittedAt).Round(time.Millisecond)))
			}
		}
		if len(overtook) > 0 {
			c.failed = append(c.failed, fmt.Sprintf("execution %d admitted after %d younger ones: %s", x.id, len(overtook), strings.Join(capList(overtook, 4), ", ")))
		}
	}
	c.figure = fmt.Sprintf("%d admitted, %d overtaken", len(admitted), len(c.failed))
	return c
}

// checkAnswered holds every request to the bound: answered 202 or 503 within requestBound.
// A request whose api was killed while it waited has nobody to answer it, and is counted
// apart in the figures. Each kind of failure is listed apart, a few of each.
func (s *faultRun) checkAnswered(results []webhookResult) faultCheck {
	c := faultCheck{name: fmt.Sprintf("every request answered 202 or 503 within %s", requestBound)}
	var wrong, unanswered, late []string
	counted := 0
	for _, r := range results {
		if r.api == nil {
			unanswered = append(unanswered, fmt.Sprintf("request %d: %v", r.seq, r.err))
			counted++
			continue
		}
		what := fmt.Sprintf("request %d to %s at %+.1fs", r.seq, r.api.name, r.sent.Sub(s.begin).Seconds())
		switch {
		case r.status == 0 && s.cutByKill(r):
			continue
		case r.status == 0:
			unanswered = append(unanswered, fmt.Sprintf("%s: no answer after %s: %v", what, r.latency.Round(time.Millisecond), r.err))
		case r.status != http.StatusAccepted && r.status != http.StatusServiceUnavailable:
			wrong = append(wrong, fmt.Sprintf("%s: answered %d after %s", what, r.status, r.latency.Round(time.Millisecond)))
		case r.latency > requestBound:
			late = append(late, fmt.Sprintf("%s: %d after %s", what, r.status, r.latency.Round(time.Millisecond)))
		}
		counted++
	}
	for _, kind := range [][]string{wrong, unanswered, late} {
		c.failed = append(c.failed, capList(kind, 5)...)
	}
	c.figure = fmt.Sprintf("%d of %d: %d other answers, %d unanswered, %d late",
		counted-len(wrong)-len(unanswered)-len(late), counted, len(wrong), len(unanswered), len(late))
	return c
}
