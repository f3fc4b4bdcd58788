-- Retention (docs/operations.md, Retention) and the webhook check (Webhooks). The retention
-- module of the executor role deletes from attune.execution, attune.enforcement and
-- attune.event; the api role reads attune.rule and attune.webhook_secret for each webhook.
--   execution_root_created_idx   the roots of execution trees (no parent, a first attempt)
--                                in (created, id) order: retention reads the oldest in
--                                batches past a cursor. Executions had no index on created.
--   workflow_rerun_source_idx    deleting a workflow finds the reruns made from it (ON DELETE
--                                CASCADE) and retention checks none is unfinished.
--   rule_webhook_url_idx         whether an enabled rule listens on a webhook's url, asked for
--                                every POST /api/v1/webhooks/{url}.

-- +goose Up
CREATE INDEX execution_root_created_idx ON attune.execution (created, id)
    WHERE parent IS NULL AND retry_of IS NULL;
CREATE INDEX workflow_rerun_source_idx ON attune.workflow_rerun (source);
CREATE INDEX rule_webhook_url_idx ON attune.rule ((trigger_params ->> 'url'))
    WHERE enabled AND trigger_ref = 'core.webhook';

-- +goose Down
DROP INDEX attune.rule_webhook_url_idx;
DROP INDEX attune.workflow_rerun_source_idx;
DROP INDEX attune.execution_root_created_idx;
