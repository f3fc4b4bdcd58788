-- Traces: every event starts a trace, a uuid its enforcements and executions carry, and so do
-- the tasks of a workflow and the attempts of a retry; an execution requested by hand starts
-- one of its own. GET /api/v1/traces/{id} reads a trace back through these indexes.
--   event.trace_id        defaults to a new uuid: every source of events starts a trace.
--   enforcement.trace_id  copied from its event by the statements that record enforcements.
--   execution.trace_id    given to execution_create, or taken from the enforcement or parent.
--   execution_create      takes p_trace_id, after p_requested_by.
--   execution_retry_due   passes each due attempt's trace on to the next attempt.
-- Rows written before this migration keep a null trace. The defaults are set apart from
-- ADD COLUMN, so that existing rows are not rewritten with one.

-- +goose Up
ALTER TABLE attune.event ADD COLUMN trace_id uuid;
ALTER TABLE attune.event ALTER COLUMN trace_id SET DEFAULT gen_random_uuid();
ALTER TABLE attune.enforcement ADD COLUMN trace_id uuid;
ALTER TABLE attune.execution ADD COLUMN trace_id uuid;
ALTER TABLE attune.execution ALTER COLUMN trace_id SET DEFAULT gen_random_uuid();
-- Partial: the rows older than traces, however many, take no room in them. A trace's
-- enforcements are found through its events (enforcement_event_rule_key), as each carries its
-- event's trace: an index of their own would cost every rule match an insert for nothing.
CREATE INDEX event_trace_idx ON attune.event (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX execution_trace_idx ON attune.execution (trace_id) WHERE trace_id IS NOT NULL;

DROP FUNCTION attune.execution_create(text[], text[], text[], text[], bigint[], bigint[], integer[], integer[], bigint[], text[], bigint[]);
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
-- order. p_requested_by is who requested each (execution.requested_by); p_trace_id the trace
-- each belongs to, or null for its enforcement's, else its parent's, else a new one.
CREATE FUNCTION attune.execution_create(
    p_action_ref text[], p_parameters text[], p_status text[], p_reason text[], p_enforcement bigint[],
    p_parent bigint[], p_timeout_seconds integer[], p_attempt integer[], p_retry_of bigint[], p_secrets text[],
    p_requested_by bigint[], p_trace_id uuid[]
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
                coalesce(string_to_array(nullif(u.secrets, ''), ','), '{}') AS secrets, u.requested_by,
                -- The lookup runs only for items without a trace. An enforcement or parent
                -- older than traces passes its null on: its work is no new trace's.
                coalesce(u.trace_id, CASE WHEN u.enforcement IS NOT NULL THEN enf.trace_id
                    WHEN u.parent IS NOT NULL THEN (SELECT p.trace_id FROM attune.execution p WHERE p.id = u.parent)
                    ELSE gen_random_uuid() END) AS trace_id,
                a.id AS action_id,
                CASE WHEN coalesce(u.status, 'requested') = 'requested' THEN refs.retry END AS retry,
                nextval(ids) AS new_id,
                -- Joined by id, not tested with EXISTS: beside "or no enforcement" the planner
                -- hashes an EXISTS over every enforcement still created, a backlog's worth.
                u.enforcement IS NULL OR enf.status = 'created' AS open
            FROM unnest(p_action_ref, p_parameters, p_status, p_reason, p_enforcement, p_parent, p_timeout_seconds,
                    p_attempt, p_retry_of, p_secrets, p_requested_by, p_trace_id) WITH ORDINALITY
                AS u(action_ref, parameters, status, reason, enforcement, parent, timeout_seconds, attempt, retry_of, secrets,
                    requested_by, trace_id, n)
            LEFT JOIN attune.enforcement enf ON enf.id = u.enforcement
            LEFT JOIN refs ON refs.action_ref = u.action_ref
            LEFT JOIN attune.action a ON a.ref = u.action_ref
            LEFT JOIN LATERAL attune.policy_for(u.action_ref) AS pol ON true
            WHERE pol.id IS NULL OR coalesce(u.status, 'requested') <> 'requested'),
        created AS (
            INSERT INTO attune.execution (id, action, action_ref, status, parameters, reason, enforcement, parent,
                    timeout_seconds, finished_at, admitted, admitted_at, attempt, retry_of, retry, secrets, requested_by, trace_id)
            OVERRIDING SYSTEM VALUE
            SELECT i.new_id, i.action_id, i.action_ref, CASE WHEN i.status = 'requested' THEN 'scheduled' ELSE i.status END,
                i.parameters, i.reason, i.enforcement, i.parent, i.timeout_seconds,
                CASE WHEN i.status = 'requested' THEN NULL ELSE now() END, i.status = 'requested',
                CASE WHEN i.status = 'requested' THEN clock_timestamp() END, i.attempt, i.retry_of, i.retry, i.secrets, i.requested_by,
                i.trace_id
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
            coalesce(string_to_array(nullif(u.secrets, ''), ','), '{}') AS secrets, u.requested_by,
            coalesce(u.trace_id, CASE WHEN u.enforcement IS NOT NULL
                    THEN (SELECT e.trace_id FROM attune.enforcement e WHERE e.id = u.enforcement)
                WHEN u.parent IS NOT NULL THEN (SELECT p.trace_id FROM attune.execution p WHERE p.id = u.parent)
                ELSE gen_random_uuid() END) AS trace_id,
            a.id AS action_id, pol, l.group_key, ag.id AS group_id, attune.retry_for(u.action_ref) AS retry
        FROM unnest(p_action_ref, p_parameters, p_status, p_reason, p_enforcement, p_parent, p_timeout_seconds,
                p_attempt, p_retry_of, p_secrets, p_requested_by, p_trace_id) WITH ORDINALITY
            AS u(action_ref, parameters, status, reason, enforcement, parent, timeout_seconds, attempt, retry_of, secrets,
                requested_by, trace_id, n)
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
                finished_at, admitted, admitted_at, attempt, retry_of, retry, secrets, requested_by, trace_id)
        SELECT it.action_id, it.action_ref,
            CASE decided WHEN 'admitted' THEN 'scheduled' WHEN 'queued' THEN 'requested' ELSE decided END,
            coalesce(it.parameters, '{}'), coalesce(refusal, it.reason), it.enforcement, it.parent, it.timeout_seconds,
            CASE WHEN decided IN ('admitted', 'queued') THEN NULL ELSE now() END,
            decided = 'admitted', CASE WHEN decided = 'admitted' THEN clock_timestamp() END,
            it.attempt, it.retry_of, it.retry, it.secrets, it.requested_by, it.trace_id
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
-- +goose StatementBegin
-- execution_retry_due creates the next attempt of up to p_limit executions whose retry is due,
-- oldest due first, and answers as execution_create does. Rows another executor holds are
-- skipped: it is creating their attempts. An attempt is requested by whoever requested the
-- one before it, and belongs to its trace.
CREATE OR REPLACE FUNCTION attune.execution_retry_due(p_limit integer)
RETURNS TABLE (out_ord integer, out_outcome text, out_execution attune.execution)
LANGUAGE plpgsql AS $$
DECLARE
    due attune.execution[];
BEGIN
    WITH d AS (
        SELECT id FROM attune.execution WHERE retry_at <= now() ORDER BY retry_at, id LIMIT p_limit FOR UPDATE SKIP LOCKED),
    cleared AS (
        UPDATE attune.execution e SET retry_at = NULL FROM d WHERE e.id = d.id RETURNING e.*)
    -- An attempt that exists already (made for an abandonment a late result replaced) is not
    -- made twice.
    SELECT array_agg(c ORDER BY c.id) INTO due FROM cleared c
    WHERE NOT EXISTS (SELECT 1 FROM attune.execution n WHERE n.retry_of = coalesce(c.retry_of, c.id) AND n.attempt = c.attempt + 1);
    IF due IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM attune.execution_create(
        ARRAY(SELECT r.action_ref FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT r.parameters::text FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT CASE WHEN a.enabled THEN 'requested' ELSE 'failed' END
            FROM unnest(due) WITH ORDINALITY r LEFT JOIN attune.action a ON a.ref = r.action_ref ORDER BY r.ordinality),
        ARRAY(SELECT CASE WHEN a.id IS NULL THEN format('action %s does not exist', r.action_ref)
                WHEN NOT a.enabled THEN format('action %s is disabled', r.action_ref) END
            FROM unnest(due) WITH ORDINALITY r LEFT JOIN attune.action a ON a.ref = r.action_ref ORDER BY r.ordinality),
        ARRAY(SELECT NULL::bigint FROM unnest(due)),
        ARRAY(SELECT r.parent FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT r.timeout_seconds FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT r.attempt + 1 FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT coalesce(r.retry_of, r.id) FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT array_to_string(r.secrets, ',') FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        -- Every attempt is requested by whoever requested the first: a workflow run again
        -- reads its requester's user keys.
        ARRAY(SELECT r.requested_by FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT r.trace_id FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality));
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION attune.execution_create(text[], text[], text[], text[], bigint[], bigint[], integer[], integer[], bigint[], text[], bigint[],
    uuid[]);
-- The functions as 00023 made them.
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
-- order. p_requested_by is who requested each (execution.requested_by).
CREATE FUNCTION attune.execution_create(
    p_action_ref text[], p_parameters text[], p_status text[], p_reason text[], p_enforcement bigint[],
    p_parent bigint[], p_timeout_seconds integer[], p_attempt integer[], p_retry_of bigint[], p_secrets text[],
    p_requested_by bigint[]
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
                coalesce(string_to_array(nullif(u.secrets, ''), ','), '{}') AS secrets, u.requested_by,
                a.id AS action_id,
                CASE WHEN coalesce(u.status, 'requested') = 'requested' THEN refs.retry END AS retry,
                nextval(ids) AS new_id,
                -- Joined by id, not tested with EXISTS: beside "or no enforcement" the planner
                -- hashes an EXISTS over every enforcement still created, a backlog's worth.
                u.enforcement IS NULL OR enf.status = 'created' AS open
            FROM unnest(p_action_ref, p_parameters, p_status, p_reason, p_enforcement, p_parent, p_timeout_seconds,
                    p_attempt, p_retry_of, p_secrets, p_requested_by) WITH ORDINALITY
                AS u(action_ref, parameters, status, reason, enforcement, parent, timeout_seconds, attempt, retry_of, secrets,
                    requested_by, n)
            LEFT JOIN attune.enforcement enf ON enf.id = u.enforcement
            LEFT JOIN refs ON refs.action_ref = u.action_ref
            LEFT JOIN attune.action a ON a.ref = u.action_ref
            LEFT JOIN LATERAL attune.policy_for(u.action_ref) AS pol ON true
            WHERE pol.id IS NULL OR coalesce(u.status, 'requested') <> 'requested'),
        created AS (
            INSERT INTO attune.execution (id, action, action_ref, status, parameters, reason, enforcement, parent,
                    timeout_seconds, finished_at, admitted, admitted_at, attempt, retry_of, retry, secrets, requested_by)
            OVERRIDING SYSTEM VALUE
            SELECT i.new_id, i.action_id, i.action_ref, CASE WHEN i.status = 'requested' THEN 'scheduled' ELSE i.status END,
                i.parameters, i.reason, i.enforcement, i.parent, i.timeout_seconds,
                CASE WHEN i.status = 'requested' THEN NULL ELSE now() END, i.status = 'requested',
                CASE WHEN i.status = 'requested' THEN clock_timestamp() END, i.attempt, i.retry_of, i.retry, i.secrets, i.requested_by
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
            coalesce(string_to_array(nullif(u.secrets, ''), ','), '{}') AS secrets, u.requested_by,
            a.id AS action_id, pol, l.group_key, ag.id AS group_id, attune.retry_for(u.action_ref) AS retry
        FROM unnest(p_action_ref, p_parameters, p_status, p_reason, p_enforcement, p_parent, p_timeout_seconds,
                p_attempt, p_retry_of, p_secrets, p_requested_by) WITH ORDINALITY
            AS u(action_ref, parameters, status, reason, enforcement, parent, timeout_seconds, attempt, retry_of, secrets,
                requested_by, n)
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
                finished_at, admitted, admitted_at, attempt, retry_of, retry, secrets, requested_by)
        SELECT it.action_id, it.action_ref,
            CASE decided WHEN 'admitted' THEN 'scheduled' WHEN 'queued' THEN 'requested' ELSE decided END,
            coalesce(it.parameters, '{}'), coalesce(refusal, it.reason), it.enforcement, it.parent, it.timeout_seconds,
            CASE WHEN decided IN ('admitted', 'queued') THEN NULL ELSE now() END,
            decided = 'admitted', CASE WHEN decided = 'admitted' THEN clock_timestamp() END,
            it.attempt, it.retry_of, it.retry, it.secrets, it.requested_by
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
-- +goose StatementBegin
-- execution_retry_due creates the next attempt of up to p_limit executions whose retry is due,
-- oldest due first, and answers as execution_create does. Rows another executor holds are
-- skipped: it is creating their attempts. An attempt is requested by whoever requested the
-- one before it.
CREATE OR REPLACE FUNCTION attune.execution_retry_due(p_limit integer)
RETURNS TABLE (out_ord integer, out_outcome text, out_execution attune.execution)
LANGUAGE plpgsql AS $$
DECLARE
    due attune.execution[];
BEGIN
    WITH d AS (
        SELECT id FROM attune.execution WHERE retry_at <= now() ORDER BY retry_at, id LIMIT p_limit FOR UPDATE SKIP LOCKED),
    cleared AS (
        UPDATE attune.execution e SET retry_at = NULL FROM d WHERE e.id = d.id RETURNING e.*)
    -- An attempt that exists already (made for an abandonment a late result replaced) is not
    -- made twice.
    SELECT array_agg(c ORDER BY c.id) INTO due FROM cleared c
    WHERE NOT EXISTS (SELECT 1 FROM attune.execution n WHERE n.retry_of = coalesce(c.retry_of, c.id) AND n.attempt = c.attempt + 1);
    IF due IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM attune.execution_create(
        ARRAY(SELECT r.action_ref FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT r.parameters::text FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT CASE WHEN a.enabled THEN 'requested' ELSE 'failed' END
            FROM unnest(due) WITH ORDINALITY r LEFT JOIN attune.action a ON a.ref = r.action_ref ORDER BY r.ordinality),
        ARRAY(SELECT CASE WHEN a.id IS NULL THEN format('action %s does not exist', r.action_ref)
                WHEN NOT a.enabled THEN format('action %s is disabled', r.action_ref) END
            FROM unnest(due) WITH ORDINALITY r LEFT JOIN attune.action a ON a.ref = r.action_ref ORDER BY r.ordinality),
        ARRAY(SELECT NULL::bigint FROM unnest(due)),
        ARRAY(SELECT r.parent FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT r.timeout_seconds FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT r.attempt + 1 FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT coalesce(r.retry_of, r.id) FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        ARRAY(SELECT array_to_string(r.secrets, ',') FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality),
        -- Every attempt is requested by whoever requested the first: a workflow run again
        -- reads its requester's user keys.
        ARRAY(SELECT r.requested_by FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality));
END;
$$;
-- +goose StatementEnd

DROP INDEX attune.execution_trace_idx;
DROP INDEX attune.event_trace_idx;
ALTER TABLE attune.execution DROP COLUMN trace_id;
ALTER TABLE attune.enforcement DROP COLUMN trace_id;
ALTER TABLE attune.event DROP COLUMN trace_id;
