-- Retries planned and made (docs/architecture.md, Retries). An action or a policy declares
-- `retry` (jsonb: max_attempts, on, delay_seconds, backoff, max_delay_seconds); 00014 keeps on
-- each execution its attempt, the first attempt of its request, and the retry in force.
--   execution.retry_at       when the next attempt is due. A trigger sets it in the statement
--                            that ends an attempt that started, in one of the spec's statuses,
--                            with attempts left: once per ending, whichever process writes it.
--   execution_retry_due      creates the due attempts through execution_create (so they join
--                            their queue at its back, by id) and clears retry_at, in one
--                            transaction; execution_attempt_key keeps it to one per number.

-- +goose Up
ALTER TABLE attune.execution ADD COLUMN retry_at timestamptz;
CREATE INDEX execution_retry_due_idx ON attune.execution (retry_at) WHERE retry_at IS NOT NULL;

-- +goose StatementBegin
-- Plans the next attempt as an attempt ends, in the ending's own statement: an attempt that
-- started (a worker claimed it), ended in one of its spec's `on` statuses, with attempts left.
-- The wait is bounded (30 days), whatever the spec says: the ending must never fail on it.
--
-- A late result that replaces `abandoned` (its worker was out of touch, not dead) replaces
-- what the abandonment planned. If the next attempt already exists, it stands when the result
-- calls for a retry too, and is cancelled while it has not started when it does not (a
-- completed attempt must not run again); if it does not exist yet, the plan is made anew from
-- the result.
CREATE FUNCTION attune.execution_retry_plan() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    spec jsonb := NEW.retry;
    delay numeric;
    wanted boolean;
BEGIN
    NEW.retry_at := NULL;
    wanted := spec IS NOT NULL AND NEW.started_at IS NOT NULL
        AND NEW.attempt < (spec ->> 'max_attempts')::integer AND (spec -> 'on') ? NEW.status;
    IF OLD.status = 'abandoned' AND EXISTS (SELECT 1 FROM attune.execution n
            WHERE n.retry_of = coalesce(NEW.retry_of, NEW.id) AND n.attempt = NEW.attempt + 1) THEN
        IF NOT wanted THEN
            UPDATE attune.execution SET status = 'cancelled', finished_at = now(),
                    reason = format('attempt %s ended %s after all: the retry made for its abandonment is not needed',
                        NEW.attempt, NEW.status)
                WHERE retry_of = coalesce(NEW.retry_of, NEW.id) AND attempt = NEW.attempt + 1
                    AND status IN ('requested', 'scheduled');
        END IF;
        RETURN NEW;
    END IF;
    IF NOT wanted THEN
        RETURN NEW;
    END IF;
    delay := greatest(coalesce((spec ->> 'delay_seconds')::numeric, 0), 0);
    IF spec ->> 'backoff' = 'exponential' THEN
        delay := delay * power(2, least(NEW.attempt - 1, 40));
    END IF;
    IF spec ? 'max_delay_seconds' THEN
        delay := least(delay, (spec ->> 'max_delay_seconds')::numeric);
    END IF;
    NEW.retry_at := now() + make_interval(secs => least(delay, 30 * 86400));
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER execution_retry_plan BEFORE UPDATE OF status ON attune.execution
    FOR EACH ROW WHEN (attune.execution_status_rank(NEW.status) = 5 AND NEW.status IS DISTINCT FROM OLD.status
        AND (attune.execution_status_rank(OLD.status) < 5 OR OLD.status = 'abandoned'))
    EXECUTE FUNCTION attune.execution_retry_plan();

-- +goose StatementBegin
-- execution_retry_due creates the next attempt of up to p_limit executions whose retry is due,
-- oldest due first, and answers as execution_create does. Rows another executor holds are
-- skipped: it is creating their attempts.
CREATE FUNCTION attune.execution_retry_due(p_limit integer)
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
        ARRAY(SELECT array_to_string(r.secrets, ',') FROM unnest(due) WITH ORDINALITY r ORDER BY r.ordinality));
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION attune.execution_retry_due(integer);
DROP TRIGGER execution_retry_plan ON attune.execution;
DROP FUNCTION attune.execution_retry_plan();
DROP INDEX attune.execution_retry_due_idx;
ALTER TABLE attune.execution DROP COLUMN retry_at;
