package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// WebhookSecret is a row of attune.webhook_secret without its secret, which is only ever
// read to check a signature.
type WebhookSecret struct {
	URL     string    `json:"url"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

func scanWebhookSecret(row pgx.Row) (WebhookSecret, error) {
	var w WebhookSecret
	err := row.Scan(&w.URL, &w.Created, &w.Updated)
	return w, err
}

// WebhookSecretSet sets the secret senders to url sign with, replacing any before; created
// reports whether the url had none.
func (q *Queries) WebhookSecretSet(ctx context.Context, url, secret string) (w WebhookSecret, created bool, err error) {
	err = q.inTx(ctx, func(q *Queries) error {
		if err := q.db.QueryRow(ctx, `INSERT INTO attune.webhook_secret (url, secret) VALUES ($1, $2)
			ON CONFLICT (url) DO UPDATE SET secret = excluded.secret
			RETURNING url, created, updated, xmax = 0`, url, secret).Scan(&w.URL, &w.Created, &w.Updated, &created); err != nil {
			return err
		}
		return q.audit(ctx, auditRecord{"webhook_secret.set", "webhook", url, map[string]any{"created": created}})
	})
	if err != nil {
		return WebhookSecret{}, false, fmt.Errorf("set webhook secret of %s: %w", url, translate(err))
	}
	return w, created, nil
}

// WebhookSecretList returns a page of the urls that have a secret, in url order.
func (q *Queries) WebhookSecretList(ctx context.Context, page Page) ([]WebhookSecret, int, error) {
	return list(ctx, q.db, "webhook secrets", `FROM attune.webhook_secret`, `url, created, updated`, `url`, page, scanWebhookSecret)
}

// WebhookSecretDelete removes url's secret, so that it takes unsigned bodies again.
func (q *Queries) WebhookSecretDelete(ctx context.Context, url string) error {
	_, err := audited(ctx, q, func(q *Queries) (struct{}, error) { return struct{}{}, q.webhookSecretDelete(ctx, url) },
		func(struct{}) auditRecord { return auditRecord{"webhook_secret.delete", "webhook", url, nil} })
	return err
}

// webhookSecretDelete makes WebhookSecretDelete's change; WebhookSecretDelete records it.
func (q *Queries) webhookSecretDelete(ctx context.Context, url string) error {
	tag, err := q.db.Exec(ctx, `DELETE FROM attune.webhook_secret WHERE url = $1`, url)
	if err != nil {
		return fmt.Errorf("delete webhook secret of %s: %w", url, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete webhook secret of %s: %w", url, ErrNotFound)
	}
	return nil
}

// WebhookRoute is what a webhook's url is to the API.
type WebhookRoute struct {
	// Registered says the url has a secret: POST /webhooks/{url} takes it, signed with
	// Secret, whether or not a rule listens on it yet.
	Registered bool
	Secret     string
	// Listened says an enabled rule on core.webhook has the url in its trigger_params.
	Listened bool
}

// WebhookRouteFor returns what url is, in one statement on the primary key of
// attune.webhook_secret and the partial index rule_webhook_url_idx: it is asked for every
// webhook, and reads what is committed, so a rule disabled or deleted counts at once.
func (q *Queries) WebhookRouteFor(ctx context.Context, url string) (WebhookRoute, error) {
	var secret *string
	var r WebhookRoute
	// 'core.webhook' is the trigger webhooks fire (modules/rules.WebhookTrigger).
	err := q.db.QueryRow(ctx, `SELECT (SELECT secret FROM attune.webhook_secret WHERE url = $1),
		EXISTS (SELECT 1 FROM attune.rule WHERE enabled AND trigger_ref = 'core.webhook' AND trigger_params ->> 'url' = $1)`,
		url).Scan(&secret, &r.Listened)
	if err != nil {
		return WebhookRoute{}, fmt.Errorf("webhook route of %s: %w", url, translate(err))
	}
	if secret != nil {
		r.Registered, r.Secret = true, *secret
	}
	return r, nil
}
