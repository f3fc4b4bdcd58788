package store

import (
	"fmt"
	"strings"
	"time"
)

// Window bounds a list by creation time; a nil bound leaves that side open.
type Window struct {
	// Since is inclusive, Until exclusive.
	Since, Until *time.Time
}

// where collects a list's predicates, so that only the filters given become SQL and each can
// use its index rather than a catch-all plan.
type where struct {
	predicates []string
	args       []any
}

// add appends predicate, whose one %d is the number of arg among the statement's arguments.
func (w *where) add(predicate string, arg any) {
	w.args = append(w.args, arg)
	w.predicates = append(w.predicates, fmt.Sprintf(predicate, len(w.args)))
}

// window bounds the created column by win.
func (w *where) window(win Window) {
	if win.Since != nil {
		w.add("created >= $%d", *win.Since)
	}
	if win.Until != nil {
		w.add("created < $%d", *win.Until)
	}
}

// from is the FROM clause over table with the predicates collected.
func (w *where) from(table string) string {
	if len(w.predicates) == 0 {
		return "FROM " + table
	}
	return "FROM " + table + " WHERE " + strings.Join(w.predicates, " AND ")
}
