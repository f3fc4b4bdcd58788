package metrics

import (
	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/executor"
	"github.com/attune-go/attune/modules/retention"
	"github.com/attune-go/attune/modules/rules"
	"github.com/attune-go/attune/modules/worker"
)

// Modules are the counting interfaces the modules declare in their Deps, given the process's
// metrics. This is where a module's new counting interface (a retention's deletions) is wired:
// a field here, a metric and a method on *Metrics, and the field passed to the module's Deps in
// app.buildModules.
type Modules struct {
	Worker    worker.Metrics
	Executor  executor.Metrics
	Rules     rules.Metrics
	Retention retention.Counter
}

// Modules returns the interfaces, each nil (counting nothing) when m is: a nil *Metrics in
// an interface would not be nil to the module that checks it.
func (m *Metrics) Modules() Modules {
	if m == nil {
		return Modules{}
	}
	return Modules{Worker: m, Executor: m, Rules: m, Retention: m}
}

// Meter is the broker's meter: nil when m is, for the same reason.
func (m *Metrics) Meter() broker.Meter {
	if m == nil {
		return nil
	}
	return m
}
