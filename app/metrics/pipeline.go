package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/coalesce"
)

// Stages are the values of attune_execution_stage_seconds's stage label, in pipeline order:
// each is the time from the stage before it (the event's creation for the first).
var Stages = []string{
	"enforced", // event created → enforcement created (rule matcher)
	"created",  // enforcement created → execution created (executor)
	"admitted", // execution created → admitted by its policy (observed at the worker's claim)
	"started",  // admitted → claimed by a worker, running
	"finished", // running → its terminal status recorded
}

// pipeline is what the modules count of executions. The modules declare the interfaces
// these methods implement (worker.Metrics, executor.Metrics, rules.Metrics). Other counting
// interfaces a module declares in its Deps are implemented here the same way, a metric in
// newPipeline and a method, and passed in by app.buildModules.
type pipeline struct {
	started  *prometheus.CounterVec
	finished *prometheus.CounterVec
	// stages are the children of attune_execution_stage_seconds, one per Stages.
	stages        map[string]prometheus.Observer
	slotsBusy     prometheus.Gauge
	slotsTotal    prometheus.Gauge
	outputDropped prometheus.Counter
	outputCut     prometheus.Counter
	deleted       *prometheus.CounterVec
}

func newPipeline(reg *prometheus.Registry) *pipeline {
	stages := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "attune_execution_stage_seconds",
		Help:    "Time an execution took to reach each stage of the pipeline from the stage before it: enforced, created, admitted, started, finished.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
	}, []string{"stage"}))
	p := &pipeline{
		started: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attune_executions_started_total",
			Help: "Executions this process's worker claimed and started, by action and runner.",
		}, []string{"action", "runner"})),
		finished: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attune_executions_finished_total",
			Help: "Executions this process's worker ran and recorded a terminal status for, by action, runner and status.",
		}, []string{"action", "runner", "status"})),
		slotsBusy: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "attune_worker_slots_busy",
			Help: "Slots of this process's worker holding a dispatched execution.",
		})),
		slotsTotal: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "attune_worker_slots",
			Help: "Slots of this process's worker (--worker-concurrency); 0 without the worker role.",
		})),
		outputDropped: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attune_live_output_dropped_bytes_total",
			Help: "Bytes actions printed that this process's worker did not send live, because publishing fell behind.",
		})),
		outputCut: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attune_live_output_cut_total",
			Help: "Executions whose live output reached its bound, so that the rest went to the stored output alone.",
		})),
		deleted: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attune_retention_deleted_total",
			Help: "Rows this process's retention deleted because they were past their retention, by kind (executions, enforcements, events, audit).",
		}, []string{"kind"})),
		stages: make(map[string]prometheus.Observer, len(Stages)),
	}
	for _, s := range Stages {
		p.stages[s] = stages.WithLabelValues(s)
	}
	// Each kind shows from the start, at 0, so that a dashboard and rate() see a series before
	// the first deletion.
	for _, kind := range store.RetentionKinds {
		p.deleted.WithLabelValues(kind)
	}
	return p
}

// ExecutionStarted implements worker.Metrics.
func (p *pipeline) ExecutionStarted(action, runner string) {
	p.started.WithLabelValues(action, runner).Inc()
}

// ExecutionFinished implements worker.Metrics.
func (p *pipeline) ExecutionFinished(action, runner, status string) {
	p.finished.WithLabelValues(action, runner, status).Inc()
}

// Stage implements the modules' Stage: one of Stages, else nothing is observed. Clocks of one
// PostgreSQL give every timestamp, but a negative gap still counts as none.
func (p *pipeline) Stage(stage string, d time.Duration) {
	if o, ok := p.stages[stage]; ok {
		o.Observe(max(d, 0).Seconds())
	}
}

// SlotsBusy implements worker.Metrics.
func (p *pipeline) SlotsBusy(delta int) { p.slotsBusy.Add(float64(delta)) }

// OutputDropped implements worker.Metrics.
func (p *pipeline) OutputDropped(bytes int) { p.outputDropped.Add(float64(bytes)) }

// OutputCut implements worker.Metrics.
func (p *pipeline) OutputCut() { p.outputCut.Inc() }

// Deleted implements retention.Counter. Kinds are the retention's few table names.
func (p *pipeline) Deleted(kind string, n int) { p.deleted.WithLabelValues(kind).Add(float64(n)) }

// WorkerSlots sets how many slots the process's worker has.
func (p *pipeline) WorkerSlots(n int) { p.slotsTotal.Set(float64(n)) }

// BatchSizes is the store's store.BatchSizes: one histogram child per statement.
func (m *Metrics) BatchSizes(statement string) coalesce.Observer {
	return m.batches.WithLabelValues(statement)
}
