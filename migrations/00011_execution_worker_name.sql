-- The name of the worker that ran an execution, kept on the execution:
--   execution.worker_name  copied from the worker's row whenever execution.worker is set, by a
--                          trigger, so that every writer (the claims, a transition naming a
--                          worker) keeps it without saying so. Deleting the worker's row sets
--                          execution.worker to null (the key's ON DELETE SET NULL) and leaves
--                          the name: history keeps saying who ran what after the records of
--                          dead workers are cleaned up.

-- +goose Up
ALTER TABLE attune.execution ADD COLUMN worker_name text;

-- The backfill is not a change of the executions: `updated` stays what it was.
ALTER TABLE attune.execution DISABLE TRIGGER execution_touch;
UPDATE attune.execution e SET worker_name = w.name FROM attune.worker w WHERE w.id = e.worker;
ALTER TABLE attune.execution ENABLE TRIGGER execution_touch;

-- +goose StatementBegin
CREATE FUNCTION attune.execution_worker_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.worker_name := (SELECT w.name FROM attune.worker w WHERE w.id = NEW.worker);
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
-- Only when the worker changes to another one: a transition that restates the worker, and the
-- key's SET NULL when the worker's row goes, leave the name as it is.
CREATE TRIGGER execution_worker_name_insert BEFORE INSERT ON attune.execution
    FOR EACH ROW WHEN (NEW.worker IS NOT NULL) EXECUTE FUNCTION attune.execution_worker_name();
CREATE TRIGGER execution_worker_name_update BEFORE UPDATE OF worker ON attune.execution
    FOR EACH ROW WHEN (NEW.worker IS NOT NULL AND NEW.worker IS DISTINCT FROM OLD.worker)
    EXECUTE FUNCTION attune.execution_worker_name();

-- +goose Down
DROP TRIGGER execution_worker_name_update ON attune.execution;
DROP TRIGGER execution_worker_name_insert ON attune.execution;
DROP FUNCTION attune.execution_worker_name();
ALTER TABLE attune.execution DROP COLUMN worker_name;
