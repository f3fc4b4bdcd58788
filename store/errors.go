package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the change collides with existing data: a duplicate key, a row still
	// referenced, or a status that may not move that way.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable means PostgreSQL could not be reached or the connection broke; the
	// operation may succeed when retried. It reports itself Transient, which the broker's
	// dispatcher reads as "retry for as long as the outage lasts" (broker.IsTransient).
	ErrUnavailable error = unavailableError{}
)

type unavailableError struct{}

func (unavailableError) Error() string   { return "database unavailable" }
func (unavailableError) Transient() bool { return true }

// Error keeps the driver's message next to the sentinel it was translated to, so callers can
// match with errors.Is and still show what PostgreSQL said.
type Error struct {
	Kind       error
	Constraint string
	Err        error
}

func (e *Error) Error() string {
	if errors.Is(e.Err, pgx.ErrNoRows) {
		// "no rows in result set" says nothing the caller's "get execution 7" and "not
		// found" do not, and reads like a leak of the driver into answers.
		return e.Kind.Error()
	}
	if e.Constraint != "" {
		return fmt.Sprintf("%v (%s): %v", e.Kind, e.Constraint, e.Err)
	}
	return fmt.Sprintf("%v: %v", e.Kind, e.Err)
}

func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// describedError is a failure whose message says all: what was tried and how to fix it.
// The sentinel it carries for errors.Is is not repeated in front of it, as Error would
// ("database unavailable: cannot connect to PostgreSQL at ...").
type describedError struct {
	kind error
	msg  string
}

func described(kind error, format string, args ...any) error {
	return &describedError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func (e *describedError) Error() string { return e.msg }
func (e *describedError) Unwrap() error { return e.kind }

// InUseError is the ErrConflict of deleting something that others still name: the caller
// learns who, so that an operator knows what to change or delete first.
type InUseError struct {
	// What is the row that could not go, such as "action demo.run".
	What string
	// By names each user, such as "rule demo.on_push" or "rule demo.nightly (disabled)".
	By []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s is still used by %s", e.What, strings.Join(e.By, ", "))
}

func (e *InUseError) Unwrap() error { return ErrConflict }

// translate maps driver errors onto the store's sentinels; callers above the store never look
// at pgx errors.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &Error{Kind: ErrNotFound, Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code[:2] == "23" { // integrity constraint violations: unique, foreign key, check, not null
			return &Error{Kind: ErrConflict, Constraint: pgErr.ConstraintName, Err: err}
		}
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300": // admin shutdown, crash shutdown, cannot connect now, too many connections
			return &Error{Kind: ErrUnavailable, Err: err}
		}
		if pgErr.Code[:2] == "08" { // connection exceptions
			return &Error{Kind: ErrUnavailable, Err: err}
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var netErr net.Error
	if errors.As(err, &netErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return &Error{Kind: ErrUnavailable, Err: err}
	}
	// A server that crashes mid-answer leaves the read short; the connection is gone with it.
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) {
		return &Error{Kind: ErrUnavailable, Err: err}
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return &Error{Kind: ErrUnavailable, Err: err}
	}
	return err
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
