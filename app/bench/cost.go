package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-go/attune/broker"
)

// benchCost is what a run cost per execution: the statements and commits PostgreSQL counted
// for the run's database, the messages published, and this process's CPU and write system
// calls. Unlike executions per second, these figures barely move with the machine's other
// load, so they compare builds on a busy machine.
type benchCost struct {
	// Statements is -1 when the server has no pg_stat_statements.
	Statements float64 `json:"statements_per_execution"`
	Commits    float64 `json:"commits_per_execution"`
	// Messages counts publishes; each is delivered and acknowledged once more.
	Messages float64 `json:"messages_per_execution"`
	// CPUms is this process's CPU, its children's included (the actions, the injector).
	CPUms float64 `json:"cpu_ms_per_execution"`
	// PostgresCPUms is the CPU of the backends serving the run's database; BrokerCPUms that
	// of the RabbitMQ server, whatever else it served meanwhile. Both are read from /proc,
	// so -1 when the server is not on this machine (or, for the broker, in process).
	PostgresCPUms float64 `json:"postgres_cpu_ms_per_execution"`
	BrokerCPUms   float64 `json:"broker_cpu_ms_per_execution"`
	Writes        float64 `json:"write_syscalls_per_execution"`
	// Top lists the statements run at least once per twenty executions, most frequent first.
	Top []statementCost `json:"statements,omitempty"`
}

// statementCost is one statement's share of a run.
type statementCost struct {
	Query       string  `json:"query"`
	PerExec     float64 `json:"calls_per_execution"`
	MeanMS      float64 `json:"mean_ms"`
	rawCalls    int64
	rawExecTime float64
}

// costSnapshot is what the counters said at one moment; cost subtracts two.
type costSnapshot struct {
	statements map[int64]statementCost // by queryid; nil without pg_stat_statements
	commits    int64
	cpu        time.Duration
	writes     int64
	published  int64
	// backends is the CPU of the database's backends; broker that of every beam.smp
	// process. Negative when unknown.
	backends, broker time.Duration
}

// costMeter takes snapshots of one bench database's counters through a connection to the
// server's maintenance database, where pg_stat_statements is usually installed.
type costMeter struct {
	adminURL string
	database string
	broker   *countingBroker
}

// quiesce closes the connections to the database and waits until its backends are gone:
// PostgreSQL counts a backend's commits when it exits or every so often, so only a database
// without backends has all of its commits counted. It returns the CPU the backends used,
// negative when /proc does not show them.
func (m costMeter) quiesce(ctx context.Context, reset func()) (time.Duration, error) {
	conn, err := pgx.Connect(ctx, m.adminURL)
	if err != nil {
		return 0, fmt.Errorf("connect to count statements: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, m.database)
	if err != nil {
		return 0, fmt.Errorf("list backends: %w", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, fmt.Errorf("list backends: %w", err)
	}
	var used time.Duration
	for _, pid := range pids {
		cpu, ok := procCPU(int(pid))
		if !ok {
			used = -1
			break
		}
		used += cpu
	}
	reset()
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, m.database).Scan(&n); err != nil {
			return 0, fmt.Errorf("count backends: %w", err)
		}
		if n == 0 {
			return used, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for %d backends of %s to exit: %w", n, m.database, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (m costMeter) snapshot(ctx context.Context) (costSnapshot, error) {
	conn, err := pgx.Connect(ctx, m.adminURL)
	if err != nil {
		return costSnapshot{}, fmt.Errorf("connect to count statements: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	s := costSnapshot{published: m.broker.published.Load()}
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database WHERE datname = $1`, m.database).Scan(&s.commits); err != nil {
		return costSnapshot{}, fmt.Errorf("count commits: %w", err)
	}
	var installed bool
	// Created in the database but not loaded (shared_preload_libraries) the view only errors.
	if err := conn.QueryRow(ctx, `SELECT to_regclass('pg_stat_statements') IS NOT NULL
		AND 'pg_stat_statements' = ANY(string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))`).Scan(&installed); err != nil {
		return costSnapshot{}, fmt.Errorf("look for pg_stat_statements: %w", err)
	}
	if installed {
		rows, err := conn.Query(ctx, `SELECT queryid, query, calls, total_exec_time FROM pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)`, m.database)
		if err != nil {
			return costSnapshot{}, fmt.Errorf("read pg_stat_statements: %w", err)
		}
		s.statements = make(map[int64]statementCost)
		for rows.Next() {
			var id int64
			var c statementCost
			if err := rows.Scan(&id, &c.Query, &c.rawCalls, &c.rawExecTime); err != nil {
				return costSnapshot{}, fmt.Errorf("read pg_stat_statements: %w", err)
			}
			s.statements[id] = c
		}
		if err := rows.Err(); err != nil {
			return costSnapshot{}, fmt.Errorf("read pg_stat_statements: %w", err)
		}
	}
	s.cpu, s.writes = processCost()
	s.broker = commandCPU("beam.smp")
	return s, nil
}

// cost is what happened between before and after for n executions, leaving out the
// harness's own statements (each its own transaction), such as its polls for the end.
func cost(before, after costSnapshot, n int, harness int64) benchCost {
	per := func(v float64) float64 { return v / float64(n) }
	ms := func(d time.Duration) float64 { return per(float64(d.Microseconds()) / 1000) }
	c := benchCost{
		Statements:    -1,
		Commits:       per(float64(after.commits - before.commits - harness)),
		Messages:      per(float64(after.published - before.published)),
		CPUms:         ms(after.cpu - before.cpu),
		PostgresCPUms: -1,
		BrokerCPUms:   -1,
		Writes:        per(float64(after.writes - before.writes)),
	}
	if after.backends >= 0 {
		c.PostgresCPUms = ms(after.backends)
	}
	if before.broker > 0 && after.broker > 0 {
		c.BrokerCPUms = ms(after.broker - before.broker)
	}
	if before.statements == nil || after.statements == nil {
		return c
	}
	var total int64
	for id, a := range after.statements {
		b := before.statements[id]
		calls := a.rawCalls - b.rawCalls
		total += calls
		if calls*20 < int64(n) {
			continue
		}
		c.Top = append(c.Top, statementCost{
			Query:   strings.Join(strings.Fields(a.Query), " "),
			PerExec: per(float64(calls)),
			MeanMS:  (a.rawExecTime - b.rawExecTime) / float64(calls),
		})
	}
	c.Statements = per(float64(total - harness))
	slices.SortFunc(c.Top, func(x, y statementCost) int {
		return cmp.Or(cmp.Compare(y.PerExec, x.PerExec), strings.Compare(x.Query, y.Query))
	})
	return c
}

// processCost reads this process's CPU (its reaped children's included) and how many write
// system calls it made; zeroes where the system does not say.
func processCost() (time.Duration, int64) {
	var cpu time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return cpu, writeSyscalls()
}

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU reads the CPU process pid has used, user and system, from /proc.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: the fields after it are counted
	// from its closing parenthesis (utime and stime are the 14th and 15th fields).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * clockTick, true
}

// commandCPU sums the CPU of every process whose command is name; 0 when there is none.
func commandCPU(name string) time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		if cpu, ok := procCPU(pid); ok {
			total += cpu
		}
	}
	return total
}

// writeSyscalls reads syscw from /proc/self/io (Linux); 0 elsewhere.
func writeSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "syscw: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// printCost prints the per-statement figures of a run, for --statements.
func printCost(w io.Writer, c benchCost) error {
	for _, s := range c.Top {
		q := s.Query
		if len(q) > 110 {
			q = q[:110] + "..."
		}
		if _, err := fmt.Fprintf(w, "    %5.2f/exec  %7.3f ms  %s\n", s.PerExec, s.MeanMS, q); err != nil {
			return err
		}
	}
	return nil
}

// countingBroker counts the messages published through it.
type countingBroker struct {
	broker.Broker
	published atomic.Int64
}

func (b *countingBroker) Publish(ctx context.Context, msgs ...broker.Message) error {
	b.published.Add(int64(len(msgs)))
	return b.Broker.Publish(ctx, msgs...)
}

// countingQuerier counts the statements run through it: the harness's own, to leave out.
type countingQuerier struct {
	querier
	n atomic.Int64
}

func (q *countingQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	q.n.Add(1)
	return q.querier.QueryRow(ctx, sql, args...)
}

func (q *countingQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	q.n.Add(1)
	return q.querier.Query(ctx, sql, args...)
}
