-- attune.component_version counts changes to rules, actions and policies. A NOTIFY reaches a
-- cache some time after the change commits, so an event or an execution made just after a
-- change (a pack registered, a policy created, then a webhook) could be handled with the
-- components as they were. Caches read this count before they trust what they hold, and drop
-- it when the count has moved.

-- +goose Up
CREATE SEQUENCE attune.component_version;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.notify_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('attune.component_version');
    PERFORM pg_notify('attune_rules_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.notify_actions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('attune.component_version');
    PERFORM pg_notify('attune_actions_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.notify_policies_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('attune.component_version');
    PERFORM pg_notify('attune_policies_changed', '');
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
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.notify_actions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('attune_actions_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.notify_policies_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('attune_policies_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
DROP SEQUENCE attune.component_version;
