package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// recentFlags are the flags of the lists of what happens (events, enforcements, executions),
// which are listed newest first and grow without end: how many, and from when.
type recentFlags struct {
	limit        int
	since, until string
}

func (r *recentFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&r.limit, "limit", 50, "how many at most, newest first; more than 100 are read page after page")
	fs.StringVar(&r.since, "since", "", "only those created since then: a time back from now by this machine's clock (90s, 10m, 2h, 7d) or an RFC 3339 time")
	fs.StringVar(&r.until, "until", "", "only those created before then, given as for --since")
}

// apply checks the flags and sets the API's since and until in q; now is what a time back
// from now counts back from. A bad value is a usage error.
func (r *recentFlags) apply(q url.Values, now time.Time) error {
	if r.limit < 1 {
		return Usagef("invalid --limit %d: want 1 or more", r.limit)
	}
	for _, bound := range []struct{ name, value string }{{"since", r.since}, {"until", r.until}} {
		if bound.value == "" {
			continue
		}
		at, err := pointInTime(bound.value, now)
		if err != nil {
			return Usagef("invalid --%s %q: %v", bound.name, bound.value, err)
		}
		q.Set(bound.name, at.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// pointInTime reads a time back from now (a duration such as 10m, or whole days such as 7d,
// which Go's durations lack) or an RFC 3339 time.
func pointInTime(v string, now time.Time) (time.Time, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want a time back from now such as 10m, 2h or 7d, or an RFC 3339 time such as 2026-11-23T09:00:00Z")
}

// listUpTo answers the first limit items of a list at path, page after page: the API's pages
// hold 100 at most.
//
// Pages are read one request each, so a row created meanwhile at the top of a list pushes the
// rows below it down, and one already read comes again on the next page: it is kept once. (A
// row deleted meanwhile pulls one up past the page boundary instead, unseen; events,
// enforcements and executions are not deleted, and definitions rarely change.)
func (c *apiClient) listUpTo(ctx context.Context, path string, query url.Values, limit int) ([]json.RawMessage, error) {
	query.Set("per_page", strconv.Itoa(min(limit, maxPerPage)))
	var items []json.RawMessage
	seen := make(map[string]bool)
	for n := 1; len(items) < limit; n++ {
		batch, pages, err := c.page(ctx, path, query, n)
		if err != nil {
			return nil, err
		}
		for _, item := range batch {
			if key := itemKey(item); !seen[key] && len(items) < limit {
				seen[key] = true
				items = append(items, item)
			}
		}
		if pages == nil || n >= pages.TotalPages || len(batch) == 0 {
			break
		}
	}
	return items, nil
}

// page reads page n of a list at path.
func (c *apiClient) page(ctx context.Context, path string, query url.Values, n int) ([]json.RawMessage, *pagination, error) {
	query.Set("page", strconv.Itoa(n))
	env, err := c.call(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return nil, nil, withStatus(err)
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(env.Data, &batch); err != nil {
		return nil, nil, fmt.Errorf("decode list %s: %w", path, err)
	}
	return batch, env.Pagination, nil
}

// itemKey tells a list's items apart: by id, which every listed object but a webhook secret
// has, else by the whole item.
func itemKey(item json.RawMessage) string {
	var obj struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(item, &obj) == nil && len(obj.ID) > 0 {
		return string(obj.ID)
	}
	return string(item)
}
