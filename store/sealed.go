package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SealedColumn is a column that may hold seal tokens (package store/seal): a secret key's
// value, or JSON into which a secret parameter or a template placed one.
type SealedColumn struct {
	Table string
	// Key is the table's primary key, whole numbers all, walked in order.
	Key    []string
	Column string
	// JSON is set for a jsonb column; the tokens are rewritten in its text.
	JSON bool
	// Random is set for a column whose tokens are sealed with a random nonce (seal.Seal): a
	// secret key's value, of which no copy is compared. Every other column's are sealed
	// again with seal.SealSynthetic: they are, or may be copies of, secret parameters that
	// SealParams sealed so that equal values give equal tokens, which a policy's groups and
	// a workflow's copies compare.
	Random bool
	// UniqueWith, when set, is the column with which the text is unique (a queue's key, unique
	// within its action): see ResealBatch.
	UniqueWith string
}

func (c SealedColumn) String() string { return c.Table + "." + c.Column }

// SealedColumns are every column a token may sit in.
var SealedColumns = []SealedColumn{
	KeySealedColumn,
	{Table: "attune.execution", Key: []string{"id"}, Column: "parameters", JSON: true},
	{Table: "attune.execution", Key: []string{"id"}, Column: "result", JSON: true},
	{Table: "attune.enforcement", Key: []string{"id"}, Column: "config", JSON: true},
	{Table: "attune.rule", Key: []string{"id"}, Column: "action_params", JSON: true},
	{Table: "attune.workflow", Key: []string{"execution"}, Column: "vars", JSON: true},
	{Table: "attune.workflow_task", Key: []string{"id"}, Column: "items", JSON: true},
	{Table: "attune.workflow_task", Key: []string{"id"}, Column: "result", JSON: true},
	{Table: "attune.workflow_item", Key: []string{"task", "item", "attempt"}, Column: "result", JSON: true},
	// The JSON array of the values of a policy's grouping parameters, a secret one sealed:
	// re-sealed as the executions' parameters are, an execution created after the rotation
	// joins the queue of those created before it with the same values.
	{Table: "attune.admission_group", Key: []string{"id"}, Column: "group_key", UniqueWith: "action_ref"},
}

// KeySealedColumn is where the datastore keeps its secret values.
var KeySealedColumn = SealedColumn{Table: "attune.key", Key: []string{"id"}, Column: "sealed", Random: true}

// tokenKeyPattern finds the key id of every token, as package seal writes them.
const tokenKeyPattern = `attune:sealed:v1:(k[0-9a-f]{8,}):`

// SealedKeyIDs returns the ids of the keys the tokens in c were sealed under, each once.
func (q *Queries) SealedKeyIDs(ctx context.Context, c SealedColumn) ([]string, error) {
	ids, err := queryAll(ctx, q.db, "key ids in "+c.String(), func(row pgx.Row) (string, error) {
		var id string
		err := row.Scan(&id)
		return id, err
	}, fmt.Sprintf(`SELECT DISTINCT m[1] FROM %s, regexp_matches(%s::text, '%s', 'g') m WHERE %[2]s::text LIKE '%%attune:sealed:v1:%%' ORDER BY 1`,
		c.Table, c.Column, tokenKeyPattern))
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// ResealBatch rewrites, in one transaction, the next limit rows of c after the key after
// (nil: from the start) whose text holds a token: reseal returns the new text and whether it
// changed. The rows are locked while they are rewritten, so a process writing them meanwhile
// loses nothing. It returns the last key it read (nil when the column is done), and how many
// rows it rewrote. An error from reseal rolls the batch back whole.
// In a column unique with another (c.UniqueWith), a re-sealed text another row holds already
// is kept apart, with the row's key appended: a queue made for the same values after the new
// key became current takes what comes, and the older one drains as it is.
func (s *Store) ResealBatch(ctx context.Context, c SealedColumn, after []int64, limit int,
	reseal func(text string) (string, bool, error)) (last []int64, changed int, err error) {
	keys := strings.Join(c.Key, ", ")
	err = s.InTx(ctx, func(q *Queries) error {
		args := []any{limit}
		cond := "true"
		if after != nil {
			marks := make([]string, len(after))
			for i, v := range after {
				args = append(args, v)
				marks[i] = fmt.Sprintf("$%d", i+2)
			}
			cond = fmt.Sprintf("(%s) > (%s)", keys, strings.Join(marks, ", "))
		}
		rows, err := q.db.Query(ctx, fmt.Sprintf(`SELECT %s, %s::text FROM %s
			WHERE %s AND %[2]s::text LIKE '%%attune:sealed:v1:%%' ORDER BY %[1]s LIMIT $1 FOR UPDATE`,
			keys, c.Column, c.Table, cond), args...)
		if err != nil {
			return fmt.Errorf("read %s: %w", c, translate(err))
		}
		type found struct {
			key  []int64
			text string
		}
		read, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (found, error) {
			f := found{key: make([]int64, len(c.Key))}
			dest := make([]any, 0, len(c.Key)+1)
			for i := range f.key {
				dest = append(dest, &f.key[i])
			}
			err := r.Scan(append(dest, &f.text)...)
			return f, err
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", c, translate(err))
		}
		cast := ""
		if c.JSON {
			cast = "::jsonb"
		}
		match := make([]string, len(c.Key))
		for i, k := range c.Key {
			match[i] = fmt.Sprintf("%s = $%d", k, i+2)
		}
		value := "$1" + cast
		if c.UniqueWith != "" {
			self := qualified(c.Key, c.Table)
			value = fmt.Sprintf(`CASE WHEN EXISTS (SELECT 1 FROM %[1]s o WHERE o.%[2]s = %[1]s.%[2]s AND o.%[3]s = $1 AND (%[4]s) <> (%[5]s))
				THEN $1 || ' (before the key rotation: ' || (%[5]s)::text || ')' ELSE $1 END`,
				c.Table, c.UniqueWith, c.Column, qualified(c.Key, "o"), self)
		}
		update := fmt.Sprintf(`UPDATE %s SET %s = %s WHERE %s`, c.Table, c.Column, value, strings.Join(match, " AND "))
		for _, f := range read {
			text, ok, err := reseal(f.text)
			if err != nil {
				return fmt.Errorf("%s of row %v: %w", c, f.key, err)
			}
			last = f.key
			if !ok {
				continue
			}
			args := []any{text}
			for _, v := range f.key {
				args = append(args, v)
			}
			if _, err := q.db.Exec(ctx, update, args...); err != nil {
				return fmt.Errorf("rewrite %s of row %v: %w", c, f.key, translate(err))
			}
			changed++
		}
		if len(read) < limit {
			last = nil
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return last, changed, nil
}

// qualified is keys, each as alias.key.
func qualified(keys []string, alias string) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = alias + "." + k
	}
	return strings.Join(out, ", ")
}
