package pack

import (
	"errors"
	"fmt"

	"github.com/attune-go/attune/store"
)

// checkSelector checks a worker_selector: valid labels, on an action a worker runs (runner ""
// is a policy's, whose actions are checked as they run).
func checkSelector(sel store.Labels, runner string) error {
	if sel == nil {
		return nil
	}
	if len(sel) == 0 {
		return fieldError("worker_selector", errors.New("empty: leave it out to run on any worker"))
	}
	if runner == RunnerWorkflow || runner == RunnerInquiry {
		return fieldError("worker_selector", fmt.Errorf("the %s runner runs in the executor, on no worker", runner))
	}
	if err := sel.Check(); err != nil {
		return fieldError("worker_selector", err)
	}
	return nil
}
