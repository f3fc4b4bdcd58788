package workflow

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// graph is the definition's tasks and transitions, by task index in definition order.
type graph struct {
	d     *Definition
	index map[string]int
	// inbound[i] are the distinct tasks with a transition to task i, in definition order.
	inbound [][]int
}

// checkGraph checks what only the whole definition shows, in this order: every do names a
// task or a command; join waits for no more tasks than lead to it; some task starts; every
// task is reachable from a start; no loop runs forever. It resolves join: all and sets Start.
func checkGraph(d *Definition, joinAll map[string]bool) error {
	g := &graph{d: d, index: make(map[string]int, len(d.Tasks)), inbound: make([][]int, len(d.Tasks))}
	for i, t := range d.Tasks {
		g.index[t.Name] = i
	}
	for from, t := range d.Tasks {
		for i, tr := range t.Next {
			for _, name := range tr.Do {
				if name == CommandFail || name == CommandNoop {
					continue
				}
				to, ok := g.index[name]
				if !ok {
					return &Error{Task: t.Name, Field: transitionPath(t.Name, i, "do"), Err: unknownTask(name)}
				}
				if !slices.Contains(g.inbound[to], from) {
					g.inbound[to] = append(g.inbound[to], from)
				}
			}
		}
	}
	for i := range g.inbound {
		slices.Sort(g.inbound[i])
	}
	if err := g.joins(joinAll); err != nil {
		return err
	}
	d.Start = nil
	for i, t := range d.Tasks {
		if len(g.inbound[i]) == 0 {
			d.Start = append(d.Start, t.Name)
		}
	}
	if len(d.Start) == 0 {
		return &Error{Field: "tasks", Err: errors.New("no task to start with: every task is named by some transition's do")}
	}
	if err := g.reachable(); err != nil {
		return err
	}
	return g.endlessLoop()
}

func unknownTask(name string) error {
	return fmt.Errorf("no task %q; want a task of this workflow, %s or %s", name, CommandFail, CommandNoop)
}

// joins checks each join against the tasks that lead to it: a join is a barrier between
// several branches, so it needs at least two, and cannot wait for more than there are.
func (g *graph) joins(joinAll map[string]bool) error {
	for i, t := range g.d.Tasks {
		if t.Join == 0 && !joinAll[t.Name] {
			continue
		}
		n := len(g.inbound[i])
		names := g.names(g.inbound[i])
		switch {
		case n == 0:
			return &Error{Task: t.Name, Field: taskPath(t.Name, "join"), Err: errors.New("a join needs at least 2 tasks with a transition to it, and it has none")}
		case n == 1:
			return &Error{Task: t.Name, Field: taskPath(t.Name, "join"), Err: fmt.Errorf("a join needs at least 2 tasks with a transition to it, and it has one, %s", names[0])}
		case joinAll[t.Name]:
			t.Join = n
		case t.Join > n:
			return &Error{Task: t.Name, Field: taskPath(t.Name, "join"), Err: fmt.Errorf("waits for %d tasks, but only %d have a transition to it (%s)", t.Join, n, strings.Join(names, ", "))}
		}
	}
	return nil
}

// reachable refuses a task no path of transitions leads to from a start.
func (g *graph) reachable() error {
	seen := make([]bool, len(g.d.Tasks))
	var queue []int
	for _, name := range g.d.Start {
		seen[g.index[name]] = true
		queue = append(queue, g.index[name])
	}
	for len(queue) > 0 {
		t := g.d.Tasks[queue[0]]
		queue = queue[1:]
		for _, tr := range t.Next {
			for _, name := range tr.Do {
				if to, ok := g.index[name]; ok && !seen[to] {
					seen[to] = true
					queue = append(queue, to)
				}
			}
		}
	}
	for i, t := range g.d.Tasks {
		if !seen[i] {
			return &Error{Task: t.Name, Field: "tasks." + t.Name,
				Err: fmt.Errorf("unreachable: no path of transitions leads to it from the start (%s)", strings.Join(g.d.Start, ", "))}
		}
	}
	return nil
}

// endlessLoop refuses a loop that can never end: tasks that lead back to one another by
// transitions none of which has a when. Every such transition is taken whatever the task's
// outcome, so once one of its tasks runs, the loop runs for ever. A loop with a when on the
// way (retry until a check passes, poll until ready) is allowed.
func (g *graph) endlessLoop() error {
	always := make([][]int, len(g.d.Tasks))
	for from, t := range g.d.Tasks {
		for _, tr := range t.Next {
			if tr.When != "" {
				continue
			}
			for _, name := range tr.Do {
				if to, ok := g.index[name]; ok && !slices.Contains(always[from], to) {
					always[from] = append(always[from], to)
				}
			}
		}
	}
	var loop []int
	for _, scc := range stronglyConnected(always) {
		if len(scc) == 1 && !slices.Contains(always[scc[0]], scc[0]) {
			continue
		}
		// Of several loops, name the one whose first task comes first, whatever order the
		// search found them in.
		slices.Sort(scc)
		if loop == nil || scc[0] < loop[0] {
			loop = scc
		}
	}
	if loop == nil {
		return nil
	}
	first := g.d.Tasks[loop[0]].Name
	err := fmt.Errorf("loops for ever: %s lead back to one another by transitions without a when; put a when on one of them", strings.Join(g.names(loop), ", "))
	if len(loop) == 1 {
		err = errors.New("loops for ever: a transition without a when leads back to the task itself; give it a when")
	}
	return &Error{Task: first, Field: taskPath(first, "next"), Err: err}
}

func (g *graph) names(tasks []int) []string {
	out := make([]string, len(tasks))
	for i, t := range tasks {
		out[i] = g.d.Tasks[t].Name
	}
	return out
}

// stronglyConnected returns the strongly connected components of the graph edges (Tarjan's
// algorithm), in the order their first member is found from vertex 0 onwards.
func stronglyConnected(edges [][]int) [][]int {
	n := len(edges)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range edges[v] {
			switch {
			case index[w] < 0:
				visit(w)
				low[v] = min(low[v], low[w])
			case onStack[w]:
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var scc []int
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			scc = append(scc, w)
			if w == v {
				break
			}
		}
		out = append(out, scc)
	}
	for v := range n {
		if index[v] < 0 {
			visit(v)
		}
	}
	return out
}
