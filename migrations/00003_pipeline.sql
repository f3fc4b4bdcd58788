-- What the event pipeline needs beyond the domain tables:
--   event.rules_evaluated_at  written by the rule matcher (sensor role) when it has matched an
--                             event against the rules, so that a sweeper can find events whose
--                             event.created message was lost between commit and publish.
--   attune_rules_changed      a NOTIFY channel the rule matcher and the timer scheduler listen
--                             on, so that rule changes reach every replica at once.

-- +goose Up
ALTER TABLE attune.event ADD COLUMN rules_evaluated_at timestamptz;
-- Existing events were either evaluated or never will be; do not make the sweeper replay them.
UPDATE attune.event SET rules_evaluated_at = created;
CREATE INDEX event_unevaluated_idx ON attune.event (created) WHERE rules_evaluated_at IS NULL;

-- +goose StatementBegin
CREATE FUNCTION attune.notify_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('attune_rules_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attune.rule
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_rules_changed();

-- +goose Down
DROP TRIGGER rule_changed ON attune.rule;
DROP FUNCTION attune.notify_rules_changed();
DROP INDEX attune.event_unevaluated_idx;
ALTER TABLE attune.event DROP COLUMN rules_evaluated_at;
