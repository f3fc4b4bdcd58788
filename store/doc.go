// Package store is Attune's access to PostgreSQL: it opens the pool, runs transactions, and
// offers noun-first query methods (ExecutionInsert, WorkerHeartbeat) that translate driver
// errors into the store's own ErrNotFound, ErrConflict and ErrUnavailable.
//
// Called on a Store rather than in a transaction, the statements every execution passes
// through (an event's insert and enforce, an execution's insert, claim and transitions) and
// the component version read are coalesced: concurrent callers share one set-based statement
// and one commit, each getting its own outcome (package coalesce, batch.go). Each has a batch
// version on Queries next to its single-row one.
//
// Every table lives in the attune schema and is named in full in every query, so nothing
// depends on a search_path.
package store
