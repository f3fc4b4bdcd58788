-- attune.rule_version counts rule changes. A NOTIFY reaches a cache some time after the change
-- commits, so an event made just after a rule change (a pack registered, then a webhook) could
-- be matched against the rules as they were. The matcher labels what it caches with this
-- count, reads it again for each event, and reloads when it has moved.

-- +goose Up
CREATE SEQUENCE attune.rule_version;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.notify_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('attune.rule_version');
    PERFORM pg_notify('attune_rules_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.notify_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('attune_rules_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
DROP SEQUENCE attune.rule_version;
