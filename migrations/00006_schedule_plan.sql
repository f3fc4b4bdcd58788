-- The scheduler's oldest-waiting-first statement as a function, so that it can carry planner
-- settings of its own. Walking execution_waiting_idx in (created, id) order stops after a
-- handful of rows. But with statistics taken while nothing waited (any quiet installation) or
-- none at all (a fresh one), every plan looks equally cheap, and the planner picked ones that
-- read and sort every waiting execution: a backlog of thousands made each completion cost
-- milliseconds. With sorts, bitmap scans and sequential scans priced out, the ordered index
-- walk is the only plan left whatever the statistics say; JIT stays off because those prices
-- would otherwise trigger it. The store tests explain this body's generic plan under these
-- settings, with and without statistics.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION attune.schedule_waiting(batch integer, alive_seconds float8)
RETURNS SETOF attune.execution LANGUAGE plpgsql
SET enable_sort = off SET enable_incremental_sort = off SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off
AS $$
BEGIN
    -- PL/pgSQL keeps the plan between calls, where an SQL function would plan its body anew
    -- on every call.
    RETURN QUERY WITH room AS (
        -- The runners some live worker has room for now, computed once: when it is empty, as
        -- it is most of the time under a backlog, the scan of the waiting executions is
        -- skipped altogether.
        SELECT DISTINCT r.runner FROM attune.worker w CROSS JOIN unnest(w.runners) AS r(runner)
        WHERE w.status = 'active' AND w.last_heartbeat > now() - make_interval(secs => alive_seconds)
            AND (SELECT count(*) FROM (SELECT 1 FROM attune.execution held
                WHERE held.worker = w.id AND held.status IN ('scheduled', 'running', 'canceling')
                LIMIT 2 * w.concurrency) x) < 2 * w.concurrency),
    next AS (
        -- The runner is looked up per row and compared with an array, not joined: a join lets
        -- the planner start from the action and sort every waiting execution of it.
        SELECT e.id, (SELECT a.runner_type FROM attune.action a WHERE a.ref = e.action_ref) AS runner_type
        FROM attune.execution e
        WHERE EXISTS (SELECT 1 FROM room) AND e.status = 'requested'
            -- Only executions a worker has room for, so that a backlog of one runner never
            -- holds up another runner's executions.
            AND (SELECT a.runner_type FROM attune.action a WHERE a.ref = e.action_ref) = ANY (ARRAY(SELECT runner FROM room))
        ORDER BY e.created, e.id
        LIMIT batch
        FOR UPDATE OF e SKIP LOCKED),
    pick AS (
        -- Each onto the live worker with the most room, ties broken at random so that
        -- schedulers on several replicas spread their picks.
        SELECT next.id AS execution_id, (
            SELECT w.id FROM attune.worker w
            WHERE w.status = 'active' AND w.last_heartbeat > now() - make_interval(secs => alive_seconds)
                AND next.runner_type = ANY (w.runners)
                AND (SELECT count(*) FROM (SELECT 1 FROM attune.execution held
                    WHERE held.worker = w.id AND held.status IN ('scheduled', 'running', 'canceling')
                    LIMIT 2 * w.concurrency) x) < 2 * w.concurrency
            ORDER BY (SELECT count(*) FROM (SELECT 1 FROM attune.execution held
                    WHERE held.worker = w.id AND held.status IN ('scheduled', 'running', 'canceling')
                    LIMIT 2 * w.concurrency) x)::float8 / w.concurrency, random()
            LIMIT 1) AS worker_id
        FROM next)
    -- By id alone: next holds each row's lock, taken with its status still requested, and a
    -- status predicate here would invite the planner to start from the status instead.
    UPDATE attune.execution SET status = 'scheduled', worker = pick.worker_id
    FROM pick WHERE execution.id = pick.execution_id AND pick.worker_id IS NOT NULL
    RETURNING execution.*;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION attune.schedule_waiting(integer, float8);
