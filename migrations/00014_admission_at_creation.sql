-- Admission decided as an execution is created, in id order (docs/architecture.md, Policies).
-- (Numbered 00014: it creates executions with the secret names of 00012.)
--
-- Until now an execution was inserted first and admitted afterwards, by whichever executor
-- got to it, in a transaction of its own: when its group had room, a later execution could be
-- admitted while an earlier one had not been looked at yet. Now every path that creates an
-- execution (an enforcement's, the API's execute and rerun, a retry) goes through
-- attune.execution_create, which takes the group's row lock BEFORE the execution's id is drawn
-- and decides in that same transaction. So, within one queue, ids are drawn in the order the
-- decisions are made, and the queue is ordered by id: admission follows id order by
-- construction, however many api and executor replicas create executions.
--
--   policy_for               the policy that limits an action: its own enabled one with a
--                            concurrency or rate limit, else its pack's. It alone decides;
--                            executors no longer pass limits from their caches.
--   retry_for                the retry in force: the action's own policy's, else its pack
--                            policy's, else the action's (a policy that declares only a retry
--                            changes no limit).
--   admission_group_key      the queue within an action: the JSON array of the values of the
--                            policy's grouping parameters ('' without any).
--   admission_entry_queue_idx  the queue in id order; replaces the (enqueued_at, execution)
--                            order, which followed transaction start times, not ids.
--   admission_promote        admits the oldest waiters in id order, and stops (rather than
--                            skipping) at a waiter another transaction holds.
--   execution_create         creates executions, admission included, for a batch of items.
--   admission_admit_late     decides an execution created requested by an older version.
--   admission_apply_policies a trigger: a policy written or deleted brings every queue's limits
--                            in line and admits what they now allow, in the same transaction,
--                            so that no newcomer decided after it can pass a waiter.
--   execution.attempt, retry_of, retry  an attempt's number, the first attempt of its request,
--                            and the retry in force when it was created (00015 plans retries).
--   enforcement.action_ref   the action a rule matched with, so that an enforcement read back
--                            runs what its rule meant at match time, as one announced does.
--   execution_status_forward also lets a late result replace `abandoned`: a worker judged dead
--                            that was not records what its action did.
--
-- Lock order: every writer that holds a queue's row and an execution's takes the queue first,
-- and several queues in id order; the store's multi-row endings take their queues first too.

-- +goose Up
ALTER TABLE attune.action ADD COLUMN retry jsonb;
ALTER TABLE attune.policy ADD COLUMN retry jsonb;
ALTER TABLE attune.execution
    ADD COLUMN attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    ADD COLUMN retry_of bigint REFERENCES attune.execution (id) ON DELETE SET NULL,
    ADD COLUMN retry jsonb;
CREATE UNIQUE INDEX execution_attempt_key ON attune.execution (retry_of, attempt) WHERE retry_of IS NOT NULL;
ALTER TABLE attune.enforcement ADD COLUMN action_ref text;

DROP INDEX attune.admission_entry_fifo_idx;
CREATE INDEX admission_entry_queue_idx ON attune.admission_entry (admission_group, execution) WHERE state = 'queued';
ALTER TABLE attune.admission_group DROP COLUMN head_enqueued_at;

-- Group keys were made by the executor (Go's compact JSON); jsonb's text form is what the
-- database makes now.
UPDATE attune.admission_group g SET group_key = g.group_key::jsonb::text
WHERE g.group_key <> '' AND g.group_key <> g.group_key::jsonb::text
    AND NOT EXISTS (SELECT 1 FROM attune.admission_group o
        WHERE o.action_ref = g.action_ref AND o.group_key = g.group_key::jsonb::text);

-- +goose StatementBegin
-- (A set of at most one row, so that the planner inlines it into the statements that join it.)
CREATE FUNCTION attune.policy_for(p_action_ref text) RETURNS SETOF attune.policy
LANGUAGE sql STABLE AS $$
    SELECT p.* FROM attune.policy p
    WHERE p.enabled AND (p.concurrency_limit IS NOT NULL OR p.rate_max_executions IS NOT NULL)
        AND (p.action_ref = p_action_ref
            OR p.pack_ref = (SELECT a.pack_ref FROM attune.action a WHERE a.ref = p_action_ref))
    ORDER BY p.action_ref IS NULL, p.ref
    LIMIT 1
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- (PL/pgSQL, so that a session plans its statement once rather than at every call.)
CREATE FUNCTION attune.retry_for(p_action_ref text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(
        (SELECT p.retry FROM attune.policy p
            WHERE p.enabled AND p.retry IS NOT NULL AND (p.action_ref = p_action_ref
                OR p.pack_ref = (SELECT a.pack_ref FROM attune.action a WHERE a.ref = p_action_ref))
            ORDER BY p.action_ref IS NULL, p.ref
            LIMIT 1),
        (SELECT a.retry FROM attune.action a WHERE a.ref = p_action_ref));
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION attune.admission_group_key(params jsonb, names text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN coalesce(cardinality(names), 0) = 0 THEN ''
        ELSE (SELECT jsonb_agg(params -> u.name ORDER BY u.n) FROM unnest(names) WITH ORDINALITY AS u(name, n))::text
    END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- The admissions a rate window still counts, after one more at now(), newest last.
CREATE FUNCTION attune.admission_recent_after_one(g attune.admission_group) RETURNS timestamptz[]
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN g.rate_max_executions IS NULL THEN '{}'::timestamptz[]
        ELSE (attune.admission_recent(g) || now())[greatest(1, cardinality(attune.admission_recent(g)) + 2 - g.rate_max_executions):]
    END
$$;
-- +goose StatementEnd

DROP FUNCTION attune.admission_promote(bigint);
-- +goose StatementBegin
-- admission_promote admits the oldest waiters of group gid, in id order, while it is open, and
-- returns them. The search starts after the group's cursor, the last waiter admitted: each
-- waiter admitted leaves a dead entry at the front of admission_entry_queue_idx until VACUUM,
-- and starting at the front would walk them all on every admission. A waiter whose row another
-- transaction holds is being ended by it (a cancel, a queue timeout): waiting for it would
-- deadlock (that transaction takes the execution first and the group second), and skipping it
-- would admit a younger one first. So promotion stops there; when that transaction commits,
-- its own release promotes, and should it roll back, the admission pass promotes.
CREATE FUNCTION attune.admission_promote(gid bigint) RETURNS SETOF bigint
LANGUAGE plpgsql
-- As attune.schedule_waiting: the head of a queue of thousands must be read from
-- admission_entry_queue_idx in order, whatever the statistics say.
SET enable_sort = off SET enable_incremental_sort = off SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off
AS $$
DECLARE
    g attune.admission_group;
    next_id bigint;
BEGIN
    SELECT * INTO g FROM attune.admission_group WHERE id = gid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    WHILE g.queued > 0 AND attune.admission_open(g) LOOP
        SELECT ae.execution INTO next_id FROM attune.admission_entry ae
        WHERE ae.admission_group = gid AND ae.state = 'queued' AND ae.execution > g.head_execution
        ORDER BY ae.execution
        LIMIT 1;
        EXIT WHEN next_id IS NULL;
        PERFORM 1 FROM attune.execution e WHERE e.id = next_id FOR UPDATE SKIP LOCKED;
        EXIT WHEN NOT FOUND;
        UPDATE attune.admission_entry SET state = 'active', admitted_at = now(), expires_at = NULL
            WHERE execution = next_id;
        UPDATE attune.execution SET admitted = true, admitted_at = clock_timestamp() WHERE id = next_id;
        UPDATE attune.admission_group SET active = active + 1, queued = queued - 1,
                recent = attune.admission_recent_after_one(g), head_execution = next_id
            WHERE id = gid RETURNING * INTO g;
        RETURN NEXT next_id;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- execution_create creates one execution per item, with its admission decided in the same
-- transaction, and returns for each item (1-based position) what became of it:
--   admitted  created scheduled: no policy applies, or its policy had room and nobody waited
--   queued    created requested, waiting in its queue
--   cancelled created cancelled: the policy's method is cancel and there was no room
--   failed    created failed: the queue was full
--   refused   created failed as asked (p_status 'failed': the caller refused it up front)
--   exists    the item's enforcement has its execution already (returned, untouched)
--   skipped   the item's enforcement was resolved without an execution (no row returned)
-- Items no policy limits are created first, together. Items under a policy follow, one at a
-- time, in the order of their queue (existing queues by id, new ones by key), then of their
-- position: each queue's row is locked before the item's id is drawn, so ids within a queue
-- follow the order of the decisions, and batches that lock several queues lock them in one
-- order.
CREATE FUNCTION attune.execution_create(
    p_action_ref text[], p_parameters text[], p_status text[], p_reason text[], p_enforcement bigint[],
    p_parent bigint[], p_timeout_seconds integer[], p_attempt integer[], p_retry_of bigint[], p_secrets text[]
) RETURNS TABLE (out_ord integer, out_outcome text, out_execution attune.execution)
LANGUAGE plpgsql AS $$
DECLARE
    it record;
    gid bigint;
    g attune.admission_group;
    x attune.execution;
    decided text;
    refusal text;
    processed bigint[] := '{}';
    r record;
    -- Looked up once: pg_get_serial_sequence reads the catalogs at every call.
    ids regclass := pg_get_serial_sequence('attune.execution', 'id')::regclass;
BEGIN
    -- Items no policy limits (and items refused up front) are created together, in one
    -- statement: no queue orders them. Their ids are drawn ahead so that each row finds its
    -- item again; two batches that hold the same enforcements insert them in one order.
    FOR r IN
        WITH refs AS (
            -- Per action, not per item: most batches hold one action many times.
            SELECT d.action_ref, attune.retry_for(d.action_ref) AS retry
            FROM (SELECT DISTINCT action_ref FROM unnest(p_action_ref) AS action_ref) d),
        items AS (
            SELECT u.n::integer AS ord, u.action_ref, coalesce(u.parameters::jsonb, '{}') AS parameters,
                coalesce(u.status, 'requested') AS status, u.reason, u.enforcement, u.parent, u.timeout_seconds,
                coalesce(u.attempt, 1) AS attempt, u.retry_of,
                coalesce(string_to_array(nullif(u.secrets, ''), ','), '{}') AS secrets,
                a.id AS action_id,
                CASE WHEN coalesce(u.status, 'requested') = 'requested' THEN refs.retry END AS retry,
                nextval(ids) AS new_id,
                -- Joined by id, not tested with EXISTS: beside "or no enforcement" the planner
                -- hashes an EXISTS over every enforcement still created, a backlog's worth.
                u.enforcement IS NULL OR enf.status = 'created' AS open
            FROM unnest(p_action_ref, p_parameters, p_status, p_reason, p_enforcement, p_parent, p_timeout_seconds,
                    p_attempt, p_retry_of, p_secrets) WITH ORDINALITY
                AS u(action_ref, parameters, status, reason, enforcement, parent, timeout_seconds, attempt, retry_of, secrets, n)
            LEFT JOIN attune.enforcement enf ON enf.id = u.enforcement
            LEFT JOIN refs ON refs.action_ref = u.action_ref
            LEFT JOIN attune.action a ON a.ref = u.action_ref
            LEFT JOIN LATERAL attune.policy_for(u.action_ref) AS pol ON true
            WHERE pol.id IS NULL OR coalesce(u.status, 'requested') <> 'requested'),
        created AS (
            INSERT INTO attune.execution (id, action, action_ref, status, parameters, reason, enforcement, parent,
                    timeout_seconds, finished_at, admitted, admitted_at, attempt, retry_of, retry, secrets)
            OVERRIDING SYSTEM VALUE
            SELECT i.new_id, i.action_id, i.action_ref, CASE WHEN i.status = 'requested' THEN 'scheduled' ELSE i.status END,
                i.parameters, i.reason, i.enforcement, i.parent, i.timeout_seconds,
                CASE WHEN i.status = 'requested' THEN NULL ELSE now() END, i.status = 'requested',
                CASE WHEN i.status = 'requested' THEN clock_timestamp() END, i.attempt, i.retry_of, i.retry, i.secrets
            FROM items i
            WHERE i.open
            ORDER BY i.enforcement, i.ord
            ON CONFLICT (enforcement) DO NOTHING
            RETURNING *)
        SELECT i.ord, i.status, i.enforcement, c::attune.execution AS made
        FROM items i LEFT JOIN created c ON c.id = i.new_id
        ORDER BY i.ord
    LOOP
        out_ord := r.ord;
        out_execution := NULL;
        IF (r.made).id IS NOT NULL THEN
            out_outcome := CASE WHEN r.status = 'requested' THEN 'admitted' ELSE 'refused' END;
            out_execution := r.made;
            IF r.enforcement IS NOT NULL THEN
                processed := processed || r.enforcement;
            END IF;
        ELSE
            -- The enforcement has its execution (another creator's, or an earlier item's of
            -- this batch), or was resolved without one.
            SELECT * INTO x FROM attune.execution WHERE enforcement = r.enforcement;
            out_outcome := CASE WHEN FOUND THEN 'exists' ELSE 'skipped' END;
            IF FOUND THEN
                out_execution := x;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;

    -- Items under a policy, one at a time: each takes its queue's lock before its id is drawn.
    FOR it IN
        SELECT u.n::integer AS ord, u.action_ref, u.parameters::jsonb AS parameters,
            'requested' AS status, u.reason, u.enforcement, u.parent, u.timeout_seconds,
            coalesce(u.attempt, 1) AS attempt, u.retry_of,
            coalesce(string_to_array(nullif(u.secrets, ''), ','), '{}') AS secrets,
            a.id AS action_id, pol, l.group_key, ag.id AS group_id, attune.retry_for(u.action_ref) AS retry
        FROM unnest(p_action_ref, p_parameters, p_status, p_reason, p_enforcement, p_parent, p_timeout_seconds,
                p_attempt, p_retry_of, p_secrets) WITH ORDINALITY
            AS u(action_ref, parameters, status, reason, enforcement, parent, timeout_seconds, attempt, retry_of, secrets, n)
        LEFT JOIN attune.action a ON a.ref = u.action_ref
        JOIN LATERAL attune.policy_for(u.action_ref) AS pol ON true
        CROSS JOIN LATERAL (SELECT attune.admission_group_key(u.parameters::jsonb, pol.concurrency_parameters) AS group_key) l
        LEFT JOIN attune.admission_group ag ON ag.action_ref = u.action_ref AND ag.group_key = l.group_key
        WHERE coalesce(u.status, 'requested') = 'requested'
        ORDER BY ag.id NULLS LAST, u.action_ref, l.group_key, u.enforcement, u.n
    LOOP
        out_ord := it.ord;
        out_execution := NULL;
        gid := it.group_id;
        IF gid IS NULL THEN
            INSERT INTO attune.admission_group (action_ref, group_key) VALUES (it.action_ref, it.group_key)
                ON CONFLICT ON CONSTRAINT admission_group_key DO NOTHING;
            SELECT id INTO gid FROM attune.admission_group WHERE action_ref = it.action_ref AND group_key = it.group_key;
        END IF;
        -- The queue's lock comes first: it orders this item's id among its queue's.
        UPDATE attune.admission_group SET policy_ref = (it.pol).ref, concurrency_limit = (it.pol).concurrency_limit,
                rate_max_executions = (it.pol).rate_max_executions, rate_window_seconds = (it.pol).rate_window_seconds
            WHERE id = gid RETURNING * INTO g;

        decided := NULL;
        refusal := NULL;
        IF g.queued = 0 AND attune.admission_open(g) THEN
            decided := 'admitted';
        ELSIF g.concurrency_limit IS NOT NULL AND g.active >= g.concurrency_limit AND (it.pol).concurrency_method = 'cancel' THEN
            decided := 'cancelled';
            refusal := format('policy %s: %s of %s allowed at once are running', (it.pol).ref, g.active, g.concurrency_limit);
        ELSIF g.rate_max_executions IS NOT NULL AND (it.pol).rate_method = 'cancel'
                AND cardinality(attune.admission_recent(g)) >= g.rate_max_executions THEN
            decided := 'cancelled';
            refusal := format('policy %s: %s executions already started in the last %s seconds',
                (it.pol).ref, g.rate_max_executions, g.rate_window_seconds);
        ELSIF (it.pol).max_queue_length IS NOT NULL AND g.queued >= (it.pol).max_queue_length THEN
            decided := 'failed';
            refusal := format('policy %s: queue full (%s waiting, max_queue_length %s)', (it.pol).ref, g.queued, (it.pol).max_queue_length);
        ELSE
            decided := 'queued';
        END IF;

        -- One execution per enforcement, whoever else is creating it: the unique key makes a
        -- second insert wait for the first to commit and then do nothing.
        INSERT INTO attune.execution (action, action_ref, status, parameters, reason, enforcement, parent, timeout_seconds,
                finished_at, admitted, admitted_at, attempt, retry_of, retry, secrets)
        SELECT it.action_id, it.action_ref,
            CASE decided WHEN 'admitted' THEN 'scheduled' WHEN 'queued' THEN 'requested' ELSE decided END,
            coalesce(it.parameters, '{}'), coalesce(refusal, it.reason), it.enforcement, it.parent, it.timeout_seconds,
            CASE WHEN decided IN ('admitted', 'queued') THEN NULL ELSE now() END,
            decided = 'admitted', CASE WHEN decided = 'admitted' THEN clock_timestamp() END,
            it.attempt, it.retry_of, it.retry, it.secrets
        WHERE it.enforcement IS NULL
            OR EXISTS (SELECT 1 FROM attune.enforcement e WHERE e.id = it.enforcement AND e.status = 'created')
        ON CONFLICT (enforcement) DO NOTHING
        RETURNING * INTO x;
        IF NOT FOUND THEN
            -- A statement of its own, so that it sees what the other creator committed.
            SELECT * INTO x FROM attune.execution WHERE enforcement = it.enforcement;
            IF FOUND THEN
                out_outcome := 'exists';
                out_execution := x;
            ELSE
                out_outcome := 'skipped';
            END IF;
            RETURN NEXT;
            CONTINUE;
        END IF;

        IF decided = 'admitted' THEN
            INSERT INTO attune.admission_entry (execution, admission_group, state, enqueued_at, admitted_at)
                VALUES (x.id, g.id, 'active', now(), now());
            UPDATE attune.admission_group SET active = active + 1, recent = attune.admission_recent_after_one(g)
                WHERE id = g.id;
        ELSIF decided = 'queued' THEN
            INSERT INTO attune.admission_entry (execution, admission_group, state, enqueued_at, expires_at)
                VALUES (x.id, g.id, 'queued', now(),
                    CASE WHEN (it.pol).queue_timeout_seconds IS NOT NULL
                        THEN now() + make_interval(secs => (it.pol).queue_timeout_seconds) END);
            UPDATE attune.admission_group SET queued = queued + 1 WHERE id = g.id;
        END IF;
        IF it.enforcement IS NOT NULL THEN
            processed := processed || it.enforcement;
        END IF;
        out_outcome := decided;
        out_execution := x;
        RETURN NEXT;
    END LOOP;
    -- coalesce keeps the planner off enforcement_status_idx: with a backlog it holds every
    -- enforcement still created, and walking it costs more than looking these few up by key.
    UPDATE attune.enforcement SET status = 'processed', resolved_at = now()
        WHERE id = ANY (processed) AND coalesce(status, '') = 'created';
END;
$$;
-- +goose StatementEnd

DROP FUNCTION attune.admission_admit(bigint, text, text, text, integer, text, integer, integer, text, integer, integer);
-- +goose StatementBegin
-- admission_admit_late decides execution xid, created requested and undecided by a version
-- that admitted afterwards (an api replica not yet upgraded, say), and returns 'admitted',
-- 'queued', or what became of it otherwise. It queues it by its id like every other waiter;
-- when that sorts before the cursor, the cursor moves back to just before it.
CREATE FUNCTION attune.admission_admit_late(xid bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    x attune.execution;
    pol attune.policy;
    g attune.admission_group;
    entry_state text;
BEGIN
    SELECT state INTO entry_state FROM attune.admission_entry WHERE execution = xid;
    IF FOUND THEN
        RETURN CASE entry_state WHEN 'active' THEN 'admitted' ELSE 'queued' END;
    END IF;
    SELECT * INTO x FROM attune.execution WHERE id = xid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'execution % does not exist', xid USING ERRCODE = 'no_data_found';
    END IF;
    IF x.status <> 'requested' THEN
        RETURN x.status;
    ELSIF x.admitted THEN
        RETURN 'admitted';
    END IF;
    SELECT * INTO pol FROM attune.policy_for(x.action_ref);
    IF pol.id IS NULL THEN
        UPDATE attune.execution SET admitted = true, admitted_at = clock_timestamp()
            WHERE id = xid AND status = 'requested' AND NOT admitted;
        RETURN 'admitted';
    END IF;
    INSERT INTO attune.admission_group AS ag (action_ref, group_key, policy_ref, concurrency_limit, rate_max_executions, rate_window_seconds)
        VALUES (x.action_ref, attune.admission_group_key(x.parameters, pol.concurrency_parameters), pol.ref,
            pol.concurrency_limit, pol.rate_max_executions, pol.rate_window_seconds)
        ON CONFLICT ON CONSTRAINT admission_group_key DO UPDATE SET policy_ref = EXCLUDED.policy_ref,
            concurrency_limit = EXCLUDED.concurrency_limit, rate_max_executions = EXCLUDED.rate_max_executions,
            rate_window_seconds = EXCLUDED.rate_window_seconds
        RETURNING * INTO g;
    -- Queue first, then the execution: the order every writer that holds both takes them in.
    SELECT * INTO x FROM attune.execution WHERE id = xid FOR UPDATE;
    SELECT state INTO entry_state FROM attune.admission_entry WHERE execution = xid;
    IF FOUND THEN
        RETURN CASE entry_state WHEN 'active' THEN 'admitted' ELSE 'queued' END;
    ELSIF x.status <> 'requested' THEN
        RETURN x.status;
    END IF;
    IF g.queued = 0 AND attune.admission_open(g) THEN
        INSERT INTO attune.admission_entry (execution, admission_group, state, enqueued_at, admitted_at)
            VALUES (xid, g.id, 'active', now(), now());
        UPDATE attune.execution SET admitted = true, admitted_at = clock_timestamp() WHERE id = xid;
        UPDATE attune.admission_group SET active = active + 1, recent = attune.admission_recent_after_one(g) WHERE id = g.id;
        RETURN 'admitted';
    END IF;
    INSERT INTO attune.admission_entry (execution, admission_group, state, enqueued_at, expires_at)
        VALUES (xid, g.id, 'queued', now(),
            CASE WHEN pol.queue_timeout_seconds IS NOT NULL THEN now() + make_interval(secs => pol.queue_timeout_seconds) END);
    UPDATE attune.admission_group SET queued = queued + 1, head_execution = least(head_execution, xid - 1) WHERE id = g.id;
    RETURN 'queued';
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- A policy written or deleted (through the API, or a pack registered) brings the limits of
-- every queue in use in line with the policies now in force and admits what they allow, in
-- the writer's transaction: a newcomer decided after the change then finds the waiters
-- admitted, or waits behind them, instead of passing them in the moment before an executor
-- would have noticed. Queues are locked in id order first, as every writer of several does.
CREATE FUNCTION attune.admission_apply_policies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM attune.admission_group WHERE active > 0 OR queued > 0 ORDER BY id FOR UPDATE;
    UPDATE attune.admission_group g SET policy_ref = coalesce(p.ref, ''), concurrency_limit = p.concurrency_limit,
            rate_max_executions = p.rate_max_executions, rate_window_seconds = p.rate_window_seconds
        FROM attune.admission_group g2
        LEFT JOIN LATERAL attune.policy_for(g2.action_ref) p ON true
        WHERE g.id = g2.id AND (g.active > 0 OR g.queued > 0)
            AND (g.concurrency_limit, g.rate_max_executions, g.rate_window_seconds)
                IS DISTINCT FROM (p.concurrency_limit, p.rate_max_executions, p.rate_window_seconds);
    PERFORM attune.admission_promote(g.id)
        FROM (SELECT id FROM attune.admission_group WHERE queued > 0 ORDER BY id) g;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER policy_admission AFTER INSERT OR UPDATE OR DELETE ON attune.policy
    FOR EACH STATEMENT EXECUTE FUNCTION attune.admission_apply_policies();

-- +goose StatementBegin
-- A worker judged dead that was not (its heartbeats could not reach the database) records its
-- result late: `abandoned` may give way to the status the action really ended in. Every other
-- move out of a terminal status, and every move backwards, is still refused.
CREATE OR REPLACE FUNCTION attune.execution_status_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND (
        (attune.execution_status_rank(OLD.status) = 5
            AND NOT (OLD.status = 'abandoned' AND NEW.status IN ('completed', 'failed', 'timeout', 'cancelled')))
        OR attune.execution_status_rank(NEW.status) < attune.execution_status_rank(OLD.status)
    ) THEN
        RAISE EXCEPTION 'execution %: status cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'execution_status_forward';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER policy_admission ON attune.policy;
DROP FUNCTION attune.admission_apply_policies();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.execution_status_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND (
        attune.execution_status_rank(OLD.status) = 5
        OR attune.execution_status_rank(NEW.status) < attune.execution_status_rank(OLD.status)
    ) THEN
        RAISE EXCEPTION 'execution %: status cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'execution_status_forward';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
DROP FUNCTION attune.admission_admit_late(bigint);
DROP FUNCTION attune.execution_create(text[], text[], text[], text[], bigint[], bigint[], integer[], integer[], bigint[], text[]);
DROP FUNCTION attune.admission_promote(bigint);
ALTER TABLE attune.admission_group ADD COLUMN head_enqueued_at timestamptz NOT NULL DEFAULT '-infinity';
-- The functions as 00007 made them.
-- +goose StatementBegin
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
DROP FUNCTION attune.admission_recent_after_one(attune.admission_group);
DROP FUNCTION attune.admission_group_key(jsonb, text[]);
DROP FUNCTION attune.retry_for(text);
DROP FUNCTION attune.policy_for(text);
DROP INDEX attune.admission_entry_queue_idx;
CREATE INDEX admission_entry_fifo_idx ON attune.admission_entry (admission_group, enqueued_at, execution)
    WHERE state = 'queued';
ALTER TABLE attune.enforcement DROP COLUMN action_ref;
DROP INDEX attune.execution_attempt_key;
ALTER TABLE attune.execution DROP COLUMN retry, DROP COLUMN retry_of, DROP COLUMN attempt;
ALTER TABLE attune.policy DROP COLUMN retry;
ALTER TABLE attune.action DROP COLUMN retry;
