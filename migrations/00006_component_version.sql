-- attune.component_version counts changes to rules, actions and policies. A NOTIFY reaches a
-- cache some time after the change commits, so an event or an execution made just after a
-- change (a pack registered, a policy created, then a webhook) could be handled with the
-- components as they were. Caches read this count before they trust what they hold, and drop
-- it when the count has moved (store.ComponentWatch).
--
-- One trigger function serves every table whose changes caches follow: it advances the count
-- and notifies the channel named in the trigger's argument.

-- +goose Up
CREATE SEQUENCE attune.component_version;

-- +goose StatementBegin
CREATE FUNCTION attune.notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('attune.component_version');
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

DROP TRIGGER rule_changed ON attune.rule;
DROP TRIGGER action_changed ON attune.action;
DROP TRIGGER pack_changed ON attune.pack;
CREATE TRIGGER rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attune.rule
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_changed('attune_rules_changed');
CREATE TRIGGER action_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attune.action
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_changed('attune_actions_changed');
-- Packs carry the path actions run from.
CREATE TRIGGER pack_changed AFTER UPDATE OR DELETE ON attune.pack
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_changed('attune_actions_changed');
DROP FUNCTION attune.notify_rules_changed();
DROP FUNCTION attune.notify_actions_changed();

-- +goose Down
-- +goose StatementBegin
CREATE FUNCTION attune.notify_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('attune_rules_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION attune.notify_actions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('attune_actions_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
DROP TRIGGER rule_changed ON attune.rule;
DROP TRIGGER action_changed ON attune.action;
DROP TRIGGER pack_changed ON attune.pack;
CREATE TRIGGER rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attune.rule
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_rules_changed();
CREATE TRIGGER action_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attune.action
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_actions_changed();
CREATE TRIGGER pack_changed AFTER UPDATE OR DELETE ON attune.pack
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_actions_changed();
DROP FUNCTION attune.notify_changed();
DROP SEQUENCE attune.component_version;
