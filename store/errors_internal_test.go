package store

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// A server that crashes mid-answer is away, not broken: callers retry (and the API answers
// 503) rather than fail for good (500).
func TestTranslateCrashedServerIsUnavailable(t *testing.T) {
	for _, err := range []error{io.ErrUnexpectedEOF, io.EOF, pgconn.ErrConnClosed} {
		got := translate(fmt.Errorf("insert event: %w", err))
		if !errors.Is(got, ErrUnavailable) {
			t.Errorf("translate(%v) = %v, want ErrUnavailable", err, got)
		}
	}
}
