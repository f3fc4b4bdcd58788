-- What scheduling under load needs:
--   execution_waiting_idx  executions wait in requested while every worker that can run them
--                          is full; the executor (the completion listener) takes the oldest
--                          first when a slot frees. Ordered by (created, id) and partial on
--                          requested, so the planner cannot prefer the primary key and walk
--                          past every execution ever scheduled (ARCHITECTURE.md, the FIFO
--                          pitfall).
--   attune_actions_changed a NOTIFY channel the executor listens on, so that it can cache
--                          actions, which every execution reads, and drop them when a pack
--                          changes.

-- +goose Up
CREATE INDEX execution_waiting_idx ON attune.execution (created, id) WHERE status = 'requested';

-- +goose StatementBegin
CREATE FUNCTION attune.notify_actions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('attune_actions_changed', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER action_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attune.action
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_actions_changed();
-- Packs carry the path actions run from.
CREATE TRIGGER pack_changed AFTER UPDATE OR DELETE ON attune.pack
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_actions_changed();

-- +goose Down
DROP TRIGGER pack_changed ON attune.pack;
DROP TRIGGER action_changed ON attune.action;
DROP FUNCTION attune.notify_actions_changed();
DROP INDEX attune.execution_waiting_idx;
