-- Worker routing (docs/routing.md). A worker carries labels; an action or a policy may carry a
-- worker_selector (labels a worker must have to run it). An execution records, as it is made,
-- the selector in force: its action's own policy's, else its pack policy's, else its action's,
-- as attune.retry_for picks a retry. It is dispatched to the queue of that selector, and the
-- sweeper fails it with the reason when no live worker has those labels for too long.
--   worker.labels             what a worker was started with (--worker-labels), {} for none.
--   action/policy/execution.worker_selector   {label: value, ...}; NULL for none.

-- +goose Up
ALTER TABLE attune.worker ADD COLUMN labels jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object');
ALTER TABLE attune.action ADD COLUMN worker_selector jsonb CHECK (jsonb_typeof(worker_selector) = 'object');
ALTER TABLE attune.policy ADD COLUMN worker_selector jsonb CHECK (jsonb_typeof(worker_selector) = 'object');
ALTER TABLE attune.execution ADD COLUMN worker_selector jsonb;

-- The sweeper looks for selected executions no live worker will take: few, so a partial index.
CREATE INDEX execution_selector_waiting_idx ON attune.execution (created)
    WHERE worker_selector IS NOT NULL AND status IN ('requested', 'scheduled') AND worker IS NULL;

-- +goose StatementBegin
CREATE FUNCTION attune.worker_selector_for(p_action_ref text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(
        (SELECT p.worker_selector FROM attune.policy p
            WHERE p.enabled AND p.worker_selector IS NOT NULL AND (p.action_ref = p_action_ref
                OR p.pack_ref = (SELECT a.pack_ref FROM attune.action a WHERE a.ref = p_action_ref))
            ORDER BY p.action_ref IS NULL, p.ref
            LIMIT 1),
        (SELECT a.worker_selector FROM attune.action a WHERE a.ref = p_action_ref));
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Every way an execution is made (execution_create, retries, workflow tasks, inserts by tools)
-- records its selector here, so none can forget it.
CREATE FUNCTION attune.execution_selector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.worker_selector := attune.worker_selector_for(NEW.action_ref);
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER execution_selector BEFORE INSERT ON attune.execution
    FOR EACH ROW WHEN (NEW.worker_selector IS NULL) EXECUTE FUNCTION attune.execution_selector();

-- +goose Down
DROP TRIGGER execution_selector ON attune.execution;
DROP FUNCTION attune.execution_selector();
DROP FUNCTION attune.worker_selector_for(text);
DROP INDEX attune.execution_selector_waiting_idx;
ALTER TABLE attune.execution DROP COLUMN worker_selector;
ALTER TABLE attune.policy DROP COLUMN worker_selector;
ALTER TABLE attune.action DROP COLUMN worker_selector;
ALTER TABLE attune.worker DROP COLUMN labels;
