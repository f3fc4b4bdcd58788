-- Workflows (docs/workflows.md). A workflow is an execution of an action whose runner is
-- `workflow`; the executor keeps its state here and advances it in transactions that lock its
-- row, so any executor may advance any workflow and two never decide the same step.
--   action.workflow          the checked definition, as package modules/workflow encodes it.
--   workflow                 one row per workflow execution: the definition it started with,
--                            its variables, whether it is failing, and its paused flag.
--   workflow_task            one row per arrival at a task (a task in a loop is reached again:
--                            seq counts), holding its items and its result once it ended.
--   workflow_item            one row per attempt of one run of a task's action: the child
--                            execution. Its key (task, item, attempt) makes a second start of
--                            the same step a conflict rather than a second run.
--   workflow_rerun           a rerun of a failed workflow from its failed tasks: the workflow it
--                            reruns and the tasks it starts from; what succeeded is kept.
--   execution.task_name, task_item   what a child execution runs, for display.

-- +goose Up
ALTER TABLE attune.action ADD COLUMN workflow jsonb;

ALTER TABLE attune.execution ADD COLUMN task_name text, ADD COLUMN task_item integer;

ALTER TABLE attune.execution DROP CONSTRAINT execution_status_check;
ALTER TABLE attune.execution ADD CONSTRAINT execution_status_check CHECK (status IN (
    'requested', 'scheduling', 'scheduled', 'running', 'pausing', 'paused', 'completed', 'failed',
    'canceling', 'cancelled', 'timeout', 'abandoned'));

-- A paused workflow shares running's rank: it moves to and fro between them, and on to
-- canceling or an ending.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.execution_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status
        WHEN 'requested' THEN 0
        WHEN 'scheduling' THEN 1
        WHEN 'scheduled' THEN 2
        WHEN 'running' THEN 3
        WHEN 'pausing' THEN 3
        WHEN 'paused' THEN 3
        WHEN 'canceling' THEN 4
        ELSE 5
    END
$$;
-- +goose StatementEnd

DROP INDEX attune.execution_unfinished_idx;
CREATE INDEX execution_unfinished_idx ON attune.execution (status, updated)
    WHERE status IN ('requested', 'scheduling', 'scheduled', 'running', 'pausing', 'paused', 'canceling');

CREATE TABLE attune.workflow (
    execution  bigint PRIMARY KEY REFERENCES attune.execution (id) ON DELETE CASCADE,
    definition jsonb NOT NULL,
    vars       jsonb NOT NULL DEFAULT '{}',
    -- Set once a task failed unhandled or a transition said fail: nothing new starts, and the
    -- workflow fails when its running tasks have ended.
    failing    text,
    created    timestamptz NOT NULL DEFAULT now(),
    updated    timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER workflow_touch BEFORE UPDATE ON attune.workflow FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();

CREATE TABLE attune.workflow_task (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow    bigint NOT NULL REFERENCES attune.workflow (execution) ON DELETE CASCADE,
    name        text NOT NULL,
    seq         integer NOT NULL,
    -- waiting (for its join or its delay), running, or how it ended: succeeded, failed,
    -- timed_out, cancelled.
    status      text NOT NULL CHECK (status IN ('waiting', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled')),
    arrivals    integer NOT NULL DEFAULT 1,
    -- When a waiting task may start (its delay); null while its join waits.
    start_at    timestamptz,
    -- The items of a task with items, rendered at its start; null for a task without.
    items       jsonb,
    item_count  integer NOT NULL DEFAULT 1,
    -- The next item to start, and how many have ended.
    next_item   integer NOT NULL DEFAULT 0,
    items_ended integer NOT NULL DEFAULT 0,
    result      jsonb,
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow, name, seq)
);
CREATE TRIGGER workflow_task_touch BEFORE UPDATE ON attune.workflow_task FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE INDEX workflow_task_due_idx ON attune.workflow_task (start_at) WHERE status = 'waiting' AND start_at IS NOT NULL;

CREATE TABLE attune.workflow_item (
    task      bigint NOT NULL REFERENCES attune.workflow_task (id) ON DELETE CASCADE,
    item      integer NOT NULL,
    attempt   integer NOT NULL,
    workflow  bigint NOT NULL REFERENCES attune.workflow (execution) ON DELETE CASCADE,
    -- The child execution; null while the attempt waits for its retry delay.
    execution bigint UNIQUE REFERENCES attune.execution (id) ON DELETE SET NULL,
    -- running (or waiting for start_at), or the attempt's outcome.
    status    text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'cancelled')),
    start_at  timestamptz,
    result    jsonb,
    created   timestamptz NOT NULL DEFAULT now(),
    updated   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task, item, attempt)
);
CREATE TRIGGER workflow_item_touch BEFORE UPDATE ON attune.workflow_item FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();
CREATE INDEX workflow_item_running_idx ON attune.workflow_item (workflow) WHERE status = 'running';
CREATE INDEX workflow_item_due_idx ON attune.workflow_item (start_at) WHERE status = 'running' AND execution IS NULL;

CREATE TABLE attune.workflow_rerun (
    execution bigint PRIMARY KEY REFERENCES attune.execution (id) ON DELETE CASCADE,
    source    bigint NOT NULL REFERENCES attune.workflow (execution) ON DELETE CASCADE,
    tasks     text[] NOT NULL
);

-- +goose Down
DROP TABLE attune.workflow_rerun;
DROP TABLE attune.workflow_item;
DROP TABLE attune.workflow_task;
DROP TABLE attune.workflow;
-- Before the ranks change back, while paused still ranks as running.
UPDATE attune.execution SET status = 'running' WHERE status IN ('pausing', 'paused');
UPDATE attune.action SET enabled = false WHERE runner_type = 'workflow';
DROP INDEX attune.execution_unfinished_idx;
CREATE INDEX execution_unfinished_idx ON attune.execution (status, updated)
    WHERE status IN ('requested', 'scheduling', 'scheduled', 'running', 'canceling');
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION attune.execution_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
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
ALTER TABLE attune.execution DROP CONSTRAINT execution_status_check;
ALTER TABLE attune.execution ADD CONSTRAINT execution_status_check CHECK (status IN (
    'requested', 'scheduling', 'scheduled', 'running', 'completed', 'failed',
    'canceling', 'cancelled', 'timeout', 'abandoned'));
ALTER TABLE attune.execution DROP COLUMN task_name, DROP COLUMN task_item;
ALTER TABLE attune.action DROP COLUMN workflow;
