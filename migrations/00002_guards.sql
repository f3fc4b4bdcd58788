-- Guards the database keeps itself, whichever process writes: `updated` follows every change,
-- and execution and enforcement statuses never move backwards.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION attune.touch_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated := now();
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER pack_touch BEFORE UPDATE ON attune.pack FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER action_touch BEFORE UPDATE ON attune.action FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER trigger_touch BEFORE UPDATE ON attune.trigger FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER sensor_touch BEFORE UPDATE ON attune.sensor FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER rule_touch BEFORE UPDATE ON attune.rule FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER event_touch BEFORE UPDATE ON attune.event FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER enforcement_touch BEFORE UPDATE ON attune.enforcement FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER worker_touch BEFORE UPDATE ON attune.worker FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER execution_touch BEFORE UPDATE ON attune.execution FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER policy_touch BEFORE UPDATE ON attune.policy FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER admission_group_touch BEFORE UPDATE ON attune.admission_group FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE TRIGGER admission_entry_touch BEFORE UPDATE ON attune.admission_entry FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();

-- The order of execution statuses. canceling sits after running because a running execution
-- can be asked to stop; every terminal status shares the last rank, and a terminal status is
-- final.
-- +goose StatementBegin
CREATE FUNCTION attune.execution_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status
        WHEN 'requested' THEN 0
        WHEN 'scheduling' THEN 1
        WHEN 'scheduled' THEN 2
        WHEN 'running' THEN 3
        WHEN 'canceling' THEN 4
        ELSE 5
    END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION attune.execution_status_forward() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER execution_status_forward BEFORE UPDATE OF status ON attune.execution
    FOR EACH ROW EXECUTE FUNCTION attune.execution_status_forward();

-- +goose StatementBegin
CREATE FUNCTION attune.enforcement_status_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND OLD.status <> 'created' THEN
        RAISE EXCEPTION 'enforcement %: status cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'enforcement_status_forward';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER enforcement_status_forward BEFORE UPDATE OF status ON attune.enforcement
    FOR EACH ROW EXECUTE FUNCTION attune.enforcement_status_forward();

-- +goose Down
DROP TRIGGER enforcement_status_forward ON attune.enforcement;
DROP FUNCTION attune.enforcement_status_forward();
DROP TRIGGER execution_status_forward ON attune.execution;
DROP FUNCTION attune.execution_status_forward();
DROP FUNCTION attune.execution_status_rank(text);
DROP TRIGGER admission_entry_touch ON attune.admission_entry;
DROP TRIGGER admission_group_touch ON attune.admission_group;
DROP TRIGGER policy_touch ON attune.policy;
DROP TRIGGER execution_touch ON attune.execution;
DROP TRIGGER worker_touch ON attune.worker;
DROP TRIGGER enforcement_touch ON attune.enforcement;
DROP TRIGGER event_touch ON attune.event;
DROP TRIGGER rule_touch ON attune.rule;
DROP TRIGGER sensor_touch ON attune.sensor;
DROP TRIGGER trigger_touch ON attune.trigger;
DROP TRIGGER action_touch ON attune.action;
DROP TRIGGER pack_touch ON attune.pack;
DROP FUNCTION attune.touch_updated();
