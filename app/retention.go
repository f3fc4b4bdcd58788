package app

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
)

// retentionSetting is the flag that says how long one kind of row is kept (store's
// RetentionKinds). Another kind is one more line here.
type retentionSetting struct {
	kind, flag, def, help string
}

// The defaults keep a month of history, whole: an execution, its enforcement and the event
// that caused it go together (nothing goes while what refers to it stays), and a month covers
// the questions asked of history ("what ran last week, and why?") while bounding the demo's
// every-second timer to about 2.6 million executions. Audit entries are small and answer
// "who changed this?" long after the change, so they are kept a year.
var retentionSettings = []retentionSetting{
	{store.RetainExecutions, "retain-executions", "30d", "how long finished executions are kept after they ended; a workflow goes with all its children, a retried execution with all its attempts"},
	{store.RetainEnforcements, "retain-enforcements", "30d", "how long enforcements are kept after they were made; one whose execution is kept stays with it"},
	{store.RetainEvents, "retain-events", "30d", "how long events are kept after they were made; one with an enforcement kept stays with it"},
	{store.RetainAudit, "retain-audit", "365d", "how long audit entries are kept after they were written"},
}

// registerRetentionFlags adds the retention and webhook-limit flags.
func registerRetentionFlags(fs *pflag.FlagSet, c *serveConfig) {
	c.retainFlags = make(map[string]*string, len(retentionSettings))
	for _, s := range retentionSettings {
		c.retainFlags[s.kind] = fs.String(s.flag, s.def, s.help+" (executor); a duration such as 30d, 12h or 90m, or 0 to keep them for ever")
		cli.BindEnv(fs, s.flag, envName(s.flag))
	}
	fs.StringVar(&c.webhookRateFlag, "webhook-rate-limit", "", "requests a second (N/s), minute (N/m) or hour (N/h) each webhook url takes on this api replica before 429; empty takes every one")
	fs.IntVar(&c.webhookBurst, "webhook-rate-burst", 0, "requests a webhook url takes at once before --webhook-rate-limit applies; 0 is the limit's N")
	cli.BindEnv(fs, "webhook-rate-limit", "ATTUNE_WEBHOOK_RATE_LIMIT")
	cli.BindEnv(fs, "webhook-rate-burst", "ATTUNE_WEBHOOK_RATE_BURST")
}

func envName(flag string) string {
	return "ATTUNE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// validateRetention reads the retention and webhook-limit flags.
func (c *serveConfig) validateRetention() error {
	c.retain = make(map[string]time.Duration, len(retentionSettings))
	for _, s := range retentionSettings {
		raw := s.def
		if p := c.retainFlags[s.kind]; p != nil {
			raw = *p
		}
		d, err := parseRetention(raw)
		if err != nil {
			return fmt.Errorf("invalid --%s %q: %w", s.flag, raw, err)
		}
		c.retain[s.kind] = d
	}
	rate, err := parseWebhookRate(c.webhookRateFlag, c.webhookBurst)
	if err != nil {
		return fmt.Errorf("invalid --webhook-rate-limit %q / --webhook-rate-burst %d: %w", c.webhookRateFlag, c.webhookBurst, err)
	}
	c.webhookRate = rate
	return nil
}

// parseRetention reads a retention: a Go duration, or whole days as Nd; 0 keeps for ever.
func parseRetention(s string) (time.Duration, error) {
	const want = "want a duration such as 30d, 12h or 90m, or 0 to keep for ever"
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%s", want)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%s", want)
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("negative; %s", want)
	}
	return d, nil
}

// parseWebhookRate reads N/s, N/m or N/h and a burst (0: N); empty is no limit.
func parseWebhookRate(s string, burst int) (api.WebhookRate, error) {
	if s == "" {
		if burst != 0 {
			return api.WebhookRate{}, fmt.Errorf("a burst needs a rate")
		}
		return api.WebhookRate{}, nil
	}
	count, unit, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(count)
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
	if !ok || err != nil || n < 1 || per == 0 || burst < 0 {
		return api.WebhookRate{}, fmt.Errorf("want N/s, N/m or N/h with N at least 1, and a burst of 0 or more")
	}
	if burst == 0 {
		burst = n
	}
	return api.WebhookRate{PerSecond: float64(n) / per, Burst: burst}, nil
}
