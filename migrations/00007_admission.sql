-- Policy admission, decided in PostgreSQL so that it holds across executor replicas and
-- restarts (ARCHITECTURE.md, Policies and the FIFO queue):
--   execution.admitted     set once an execution may go to a worker: at once when no policy
--                          applies, else when its policy admits it. The scheduler only takes
--                          admitted executions, so what waits in a policy queue stays out of
--                          execution_waiting_idx however long the queue grows.
--   admission_group        per (action, group key): the limits in force, the slots in use, the
--                          waiters, and the recent admissions a rate limit counts. Its row lock
--                          serialises every decision about the group.
--   admission_entry        one per execution that holds or waits for a slot.
--   admission_admit        decides a newcomer: admitted, queued, cancelled or failed.
--   admission_promote      admits the oldest waiters while slots and the rate allow.
--   admission_release      a trigger: every terminal status, written by whichever process,
--                          gives back its slot (or leaves the queue) exactly once and admits
--                          the next waiter in the same transaction.
--   schedule_waiting       moves admitted executions to scheduled, oldest first.
--   attune_policies_changed  a NOTIFY channel for executors that cache policies, signalled
--                          through attune.notify_changed (00006).

-- +goose Up
-- Existing executions were scheduled without admission; the default then changes for new ones.
ALTER TABLE attune.execution ADD COLUMN admitted boolean NOT NULL DEFAULT true;
ALTER TABLE attune.execution ALTER COLUMN admitted SET DEFAULT false;
-- When it was admitted: with a policy, when it got its slot.
ALTER TABLE attune.execution ADD COLUMN admitted_at timestamptz;

DROP INDEX attune.execution_waiting_idx;
CREATE INDEX execution_waiting_idx ON attune.execution (created, id) WHERE status = 'requested' AND admitted;
-- Executions that never went through admission: the sweeper's repair looks for them.
CREATE INDEX execution_unadmitted_idx ON attune.execution (created) WHERE status = 'requested' AND NOT admitted;

ALTER TABLE attune.admission_group
    ADD COLUMN policy_ref text NOT NULL DEFAULT '',
    ADD COLUMN concurrency_limit integer,
    ADD COLUMN rate_max_executions integer,
    ADD COLUMN rate_window_seconds integer,
    ADD COLUMN queued integer NOT NULL DEFAULT 0 CHECK (queued >= 0),
    -- When the last admissions happened, newest last, at most rate_max_executions of them.
    ADD COLUMN recent timestamptz[] NOT NULL DEFAULT '{}',
    -- The cursor: every waiter sorts after this position (enqueued_at, execution).
    ADD COLUMN head_enqueued_at timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN head_execution bigint NOT NULL DEFAULT 0;
-- Every admission and release updates its group's row. No index covers the columns they
-- change, so the updates stay HOT (no new index entries, old versions pruned as the page is
-- read) as long as the page has room; the table is one row per queue, so leave room.
ALTER TABLE attune.admission_group SET (fillfactor = 50);

ALTER TABLE attune.admission_entry ADD COLUMN expires_at timestamptz;
CREATE INDEX admission_entry_expiry_idx ON attune.admission_entry (expires_at)
    WHERE state = 'queued' AND expires_at IS NOT NULL;

-- +goose StatementBegin
-- The admissions of g still inside its rate window, oldest first.
CREATE FUNCTION attune.admission_recent(g attune.admission_group) RETURNS timestamptz[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(t ORDER BY t), '{}') FROM unnest(g.recent) AS t
    WHERE g.rate_window_seconds IS NOT NULL AND t > now() - make_interval(secs => g.rate_window_seconds)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Whether g has a free slot and room in its rate window.
CREATE FUNCTION attune.admission_open(g attune.admission_group) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (g.concurrency_limit IS NULL OR g.active < g.concurrency_limit)
        AND (g.rate_max_executions IS NULL OR cardinality(attune.admission_recent(g)) < g.rate_max_executions)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- admission_promote admits the oldest waiters of group gid while it is open, and returns
-- them. The search starts after the group's cursor, the last waiter admitted in order: every
-- waiter admitted leaves a dead entry at the front of admission_entry_fifo_idx until VACUUM
-- comes, and starting at the front would walk all of them on every admission. A waiter whose
-- row another transaction holds is skipped rather than waited for: that transaction is ending
-- it (a cancel, a queue timeout), and waiting would deadlock with it, since it takes the
-- execution first and the group second. After a skip the cursor stays put, so that a waiter
-- whose ending rolls back is still found.
CREATE FUNCTION attune.admission_promote(gid bigint) RETURNS SETOF bigint
LANGUAGE plpgsql
-- As attune.schedule_waiting (below): the head of a queue of thousands must be read from
-- admission_entry_fifo_idx in order, whatever the statistics say.
SET enable_sort = off SET enable_incremental_sort = off SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off
AS $$
DECLARE
    g attune.admission_group;
    cand record;
    next_id bigint;
    next_at timestamptz;
    skipped boolean := false;
BEGIN
    SELECT * INTO g FROM attune.admission_group WHERE id = gid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    WHILE g.queued > 0 AND attune.admission_open(g) LOOP
        next_id := NULL;
        FOR cand IN SELECT ae.execution, ae.enqueued_at FROM attune.admission_entry ae
            WHERE ae.admission_group = gid AND ae.state = 'queued'
                AND (ae.enqueued_at, ae.execution) > (g.head_enqueued_at, g.head_execution)
            ORDER BY ae.enqueued_at, ae.execution
            LIMIT 16
        LOOP
            PERFORM 1 FROM attune.execution e WHERE e.id = cand.execution FOR UPDATE SKIP LOCKED;
            IF FOUND THEN
                next_id := cand.execution;
                next_at := cand.enqueued_at;
                EXIT;
            END IF;
            skipped := true;
        END LOOP;
        EXIT WHEN next_id IS NULL;
        UPDATE attune.admission_entry SET state = 'active', admitted_at = now(), expires_at = NULL
            WHERE execution = next_id;
        UPDATE attune.execution SET admitted = true, admitted_at = clock_timestamp() WHERE id = next_id;
        UPDATE attune.admission_group SET active = active + 1, queued = queued - 1,
                recent = CASE WHEN rate_max_executions IS NULL THEN '{}'
                    ELSE (attune.admission_recent(g) || now())[greatest(1, cardinality(attune.admission_recent(g)) + 2 - rate_max_executions):] END,
                head_enqueued_at = CASE WHEN skipped THEN head_enqueued_at ELSE next_at END,
                head_execution = CASE WHEN skipped THEN head_execution ELSE next_id END
            WHERE id = gid RETURNING * INTO g;
        RETURN NEXT next_id;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- admission_admit decides execution xid, still requested and not admitted, under the limits
-- given (from the policy the executor resolved). It returns 'admitted', 'queued', 'cancelled'
-- or 'failed', and for an execution decided before, what became of it: a redelivered message
-- decides nothing twice.
CREATE FUNCTION attune.admission_admit(
    xid bigint, p_action_ref text, p_group_key text, p_policy_ref text,
    p_concurrency_limit integer, p_concurrency_method text,
    p_rate_max_executions integer, p_rate_window_seconds integer, p_rate_method text,
    p_max_queue_length integer, p_queue_timeout_seconds integer
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    x attune.execution;
    g attune.admission_group;
    entry_state text;
    refusal text;
BEGIN
    -- A decision made before is answered without taking the execution's lock: a waiter's
    -- lock held here would make admission_promote skip it.
    SELECT state INTO entry_state FROM attune.admission_entry WHERE execution = xid;
    IF FOUND THEN
        RETURN CASE entry_state WHEN 'active' THEN 'admitted' ELSE 'queued' END;
    END IF;
    SELECT * INTO x FROM attune.execution WHERE id = xid FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'execution % does not exist', xid USING ERRCODE = 'no_data_found';
    END IF;
    SELECT state INTO entry_state FROM attune.admission_entry WHERE execution = xid;
    IF FOUND THEN
        RETURN CASE entry_state WHEN 'active' THEN 'admitted' ELSE 'queued' END;
    END IF;
    IF x.status <> 'requested' THEN
        RETURN x.status;
    END IF;
    IF x.admitted THEN
        RETURN 'admitted';
    END IF;

    INSERT INTO attune.admission_group AS ag (action_ref, group_key, policy_ref, concurrency_limit,
            rate_max_executions, rate_window_seconds)
        VALUES (p_action_ref, p_group_key, p_policy_ref, p_concurrency_limit, p_rate_max_executions, p_rate_window_seconds)
        ON CONFLICT ON CONSTRAINT admission_group_key DO UPDATE SET policy_ref = EXCLUDED.policy_ref,
            concurrency_limit = EXCLUDED.concurrency_limit, rate_max_executions = EXCLUDED.rate_max_executions,
            rate_window_seconds = EXCLUDED.rate_window_seconds
        RETURNING * INTO g;

    IF g.queued = 0 AND attune.admission_open(g) THEN
        INSERT INTO attune.admission_entry (execution, admission_group, state, enqueued_at, admitted_at)
            VALUES (xid, g.id, 'active', x.created, now());
        UPDATE attune.execution SET admitted = true, admitted_at = clock_timestamp() WHERE id = xid;
        UPDATE attune.admission_group SET active = active + 1,
                recent = CASE WHEN g.rate_max_executions IS NULL THEN '{}'
                    ELSE (attune.admission_recent(g) || now())[greatest(1, cardinality(attune.admission_recent(g)) + 2 - g.rate_max_executions):] END
            WHERE id = g.id;
        RETURN 'admitted';
    END IF;

    IF g.concurrency_limit IS NOT NULL AND g.active >= g.concurrency_limit AND p_concurrency_method = 'cancel' THEN
        refusal := format('policy %s: %s of %s allowed at once are running', p_policy_ref, g.active, g.concurrency_limit);
    ELSIF g.rate_max_executions IS NOT NULL AND p_rate_method = 'cancel'
            AND cardinality(attune.admission_recent(g)) >= g.rate_max_executions THEN
        refusal := format('policy %s: %s executions already started in the last %s seconds',
            p_policy_ref, g.rate_max_executions, g.rate_window_seconds);
    END IF;
    IF refusal IS NOT NULL THEN
        UPDATE attune.execution SET status = 'cancelled', reason = refusal, finished_at = now() WHERE id = xid;
        RETURN 'cancelled';
    END IF;

    IF p_max_queue_length IS NOT NULL AND g.queued >= p_max_queue_length THEN
        UPDATE attune.execution SET status = 'failed', finished_at = now(),
                reason = format('policy %s: queue full (%s waiting, max_queue_length %s)', p_policy_ref, g.queued, p_max_queue_length)
            WHERE id = xid;
        RETURN 'failed';
    END IF;

    INSERT INTO attune.admission_entry (execution, admission_group, state, enqueued_at, expires_at)
        VALUES (xid, g.id, 'queued', x.created,
            CASE WHEN p_queue_timeout_seconds IS NOT NULL THEN now() + make_interval(secs => p_queue_timeout_seconds) END);
    -- An execution decided late may sort before the cursor: move the cursor back to just
    -- before it, so that every waiter still sorts after the cursor.
    UPDATE attune.admission_group SET queued = queued + 1,
            head_enqueued_at = CASE WHEN (x.created, xid) <= (head_enqueued_at, head_execution) THEN x.created ELSE head_enqueued_at END,
            head_execution = CASE WHEN (x.created, xid) <= (head_enqueued_at, head_execution) THEN xid - 1 ELSE head_execution END
        WHERE id = g.id;
    RETURN 'queued';
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION attune.admission_release() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    e attune.admission_entry;
BEGIN
    DELETE FROM attune.admission_entry WHERE execution = NEW.id RETURNING * INTO e;
    IF FOUND THEN
        UPDATE attune.admission_group
            SET active = active - (e.state = 'active')::integer, queued = queued - (e.state = 'queued')::integer
            WHERE id = e.admission_group;
        PERFORM attune.admission_promote(e.admission_group);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER execution_admission_release AFTER UPDATE OF status ON attune.execution
    FOR EACH ROW WHEN (attune.execution_status_rank(NEW.status) = 5 AND attune.execution_status_rank(OLD.status) < 5)
    EXECUTE FUNCTION attune.admission_release();

CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attune.policy
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_changed('attune_policies_changed');

-- The scheduler's statement: admitted executions still requested move to scheduled, oldest
-- first, for dispatch to their runner's queue (the broker, not a statement, keeps each worker
-- within its concurrency). It is a function so that it can carry planner settings of its own.
-- Walking execution_waiting_idx in (created, id) order stops after a handful of rows; but with
-- statistics taken while nothing waited (any quiet installation) or none at all (a fresh one),
-- every plan looks equally cheap, and the planner picked ones that read and sort every waiting
-- execution. With sorts, bitmap scans and sequential scans priced out, the ordered walk is the
-- only plan left whatever the statistics say; JIT stays off because those prices would
-- otherwise trigger it. PL/pgSQL keeps the plan between calls. The store tests explain this
-- body's generic plan under these settings, with and without statistics.
-- +goose StatementBegin
CREATE FUNCTION attune.schedule_waiting(batch integer)
RETURNS SETOF attune.execution LANGUAGE plpgsql
SET enable_sort = off SET enable_incremental_sort = off SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off
AS $$
BEGIN
    -- Only admitted executions: those in a policy queue are not the scheduler's yet.
    RETURN QUERY WITH next AS (
        SELECT e.id FROM attune.execution e
        WHERE e.status = 'requested' AND e.admitted
        ORDER BY e.created, e.id
        LIMIT batch
        FOR UPDATE OF e SKIP LOCKED)
    UPDATE attune.execution SET status = 'scheduled'
    FROM next WHERE execution.id = next.id
    RETURNING execution.*;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION attune.schedule_waiting(integer);
DROP TRIGGER policy_changed ON attune.policy;
DROP TRIGGER execution_admission_release ON attune.execution;
DROP FUNCTION attune.admission_release();
DROP FUNCTION attune.admission_admit(bigint, text, text, text, integer, text, integer, integer, text, integer, integer);
DROP FUNCTION attune.admission_promote(bigint);
DROP FUNCTION attune.admission_open(attune.admission_group);
DROP FUNCTION attune.admission_recent(attune.admission_group);
DROP INDEX attune.admission_entry_expiry_idx;
ALTER TABLE attune.admission_entry DROP COLUMN expires_at;
ALTER TABLE attune.admission_group RESET (fillfactor);
ALTER TABLE attune.admission_group DROP COLUMN policy_ref, DROP COLUMN concurrency_limit,
    DROP COLUMN rate_max_executions, DROP COLUMN rate_window_seconds, DROP COLUMN queued, DROP COLUMN recent,
    DROP COLUMN head_enqueued_at, DROP COLUMN head_execution;
DROP INDEX attune.execution_unadmitted_idx;
DROP INDEX attune.execution_waiting_idx;
CREATE INDEX execution_waiting_idx ON attune.execution (created, id) WHERE status = 'requested';
ALTER TABLE attune.execution DROP COLUMN admitted_at;
ALTER TABLE attune.execution DROP COLUMN admitted;
