// Package store is Attune's access to PostgreSQL: it opens the pool, runs transactions, and
// offers noun-first query methods (ExecutionInsert, WorkerHeartbeat) that translate driver
// errors into the store's own ErrNotFound, ErrConflict and ErrUnavailable.
//
// Every table lives in the attune schema and is named in full in every query, so nothing
// depends on a search_path.
package store
