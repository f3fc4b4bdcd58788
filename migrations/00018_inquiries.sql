-- Inquiries (docs/inquiries.md): an execution of an action with runner `inquiry` (core.ask)
-- waits for a person's answer. The executor creates the inquiry in the transaction that moves
-- the execution to running; the answer, the timeout or a cancel ends both in one transaction.
-- Nothing but this row waits: no process holds anything for it.
--   inquiry   one per execution (a second start of the same execution is a no-op): the prompt,
--             the JSON Schema the answer must fit, who may answer, when it times out, and how
--             it ended. Its status leaves pending once and never moves again.

-- +goose Up
CREATE TABLE attune.inquiry (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution    bigint NOT NULL UNIQUE REFERENCES attune.execution (id) ON DELETE CASCADE,
    -- The workflow whose task asks, null for an inquiry made outside a workflow.
    workflow     bigint REFERENCES attune.execution (id) ON DELETE CASCADE,
    prompt       text NOT NULL,
    schema       jsonb NOT NULL DEFAULT '{"type": "object"}',
    -- Who may answer besides admins: identities with one of roles, and the identities named
    -- in users; both empty means any operator.
    roles        text[] NOT NULL DEFAULT '{}',
    users        text[] NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'responded', 'timed_out', 'cancelled')),
    response     jsonb,
    responded_by text,
    timeout_at   timestamptz NOT NULL,
    created      timestamptz NOT NULL DEFAULT now(),
    updated      timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz
);
CREATE TRIGGER inquiry_touch BEFORE UPDATE ON attune.inquiry FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE INDEX inquiry_pending_idx ON attune.inquiry (timeout_at) WHERE status = 'pending';
CREATE INDEX inquiry_workflow_idx ON attune.inquiry (workflow) WHERE workflow IS NOT NULL;

-- An inquiry ends once: whichever of the answer, the timeout and the cancel comes first.
-- +goose StatementBegin
CREATE FUNCTION attune.inquiry_status_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND OLD.status <> 'pending' THEN
        RAISE EXCEPTION 'inquiry %: status cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'inquiry_status_forward';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER inquiry_status_forward BEFORE UPDATE OF status ON attune.inquiry
    FOR EACH ROW EXECUTE FUNCTION attune.inquiry_status_forward();

-- +goose Down
UPDATE attune.action SET enabled = false WHERE runner_type = 'inquiry';
DROP TABLE attune.inquiry;
DROP FUNCTION attune.inquiry_status_forward();
