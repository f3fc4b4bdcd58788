package executor

import (
	"context"
	"strings"

	"github.com/attune-go/attune/modules/ruleeval"
	"github.com/attune-go/attune/store"
)

// keyLookup reads the datastore's keys (store.Queries.KeyLookup), in a transaction or not.
type keyLookup func(ctx context.Context, packRef string, user *int64, names []store.KeyName) (map[store.KeyName]store.KeyFound, error)

// readKeys looks up, in one statement, the keys refs names as the templates of an action or
// workflow of pack packRef, requested by user, read them, and returns them as kv and as found.
// No refs, no statement.
func readKeys(ctx context.Context, lookup keyLookup, packRef string, user *int64, refs []ruleeval.KeyRef) (map[string]any, map[ruleeval.KeyRef]ruleeval.Key, error) {
	if len(refs) == 0 {
		return nil, nil, nil
	}
	rows, err := lookup(ctx, packRef, user, ruleeval.NamesAs[store.KeyName](refs))
	if err != nil {
		return nil, nil, err
	}
	found := ruleeval.FoundFrom(rows)
	kv, err := ruleeval.KV(found)
	return kv, found, err
}

// packOf is the pack of an action's ref, <pack>.<name>.
func packOf(actionRef string) string {
	pack, _, _ := strings.Cut(actionRef, ".")
	return pack
}
