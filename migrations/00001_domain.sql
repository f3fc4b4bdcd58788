-- The domain every role works on. Who writes what:
--   pack, action, trigger, sensor, rule, policy  the api role (pack registration, CRUD)
--   event                                       the sensor role (timers) and the api role (webhooks)
--   enforcement                                 the rule matcher (sensor role)
--   execution                                   executor (up to running), worker (running onwards)
--   worker                                      the worker role (registration, heartbeat)
--   admission_group, admission_entry            the executor (policy admission, FIFO)

-- +goose Up
CREATE TABLE attune.pack (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref         text NOT NULL UNIQUE CHECK (ref ~ '^[a-z][a-z0-9_-]*$'),
    label       text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    version     text NOT NULL DEFAULT '',
    -- Where the pack was registered from; actions run their scripts from here.
    path        text NOT NULL DEFAULT '',
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE attune.action (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref             text NOT NULL UNIQUE,
    pack            bigint NOT NULL REFERENCES attune.pack (id) ON DELETE CASCADE,
    pack_ref        text NOT NULL,
    label           text NOT NULL DEFAULT '',
    description     text NOT NULL DEFAULT '',
    runner_type     text NOT NULL,
    entry_point     text NOT NULL DEFAULT '',
    parameters      jsonb NOT NULL DEFAULT '{}',
    output_format   text NOT NULL DEFAULT 'text' CHECK (output_format IN ('text', 'json')),
    timeout_seconds integer NOT NULL DEFAULT 600 CHECK (timeout_seconds > 0),
    enabled         boolean NOT NULL DEFAULT true,
    created         timestamptz NOT NULL DEFAULT now(),
    updated         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX action_pack_idx ON attune.action (pack);

CREATE TABLE attune.trigger (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref         text NOT NULL UNIQUE,
    pack        bigint NOT NULL REFERENCES attune.pack (id) ON DELETE CASCADE,
    pack_ref    text NOT NULL,
    label       text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    -- What a rule configures in trigger_params, and the schema of event payloads.
    parameters  jsonb NOT NULL DEFAULT '{}',
    output      jsonb NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trigger_pack_idx ON attune.trigger (pack);

CREATE TABLE attune.sensor (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref          text NOT NULL UNIQUE,
    pack         bigint NOT NULL REFERENCES attune.pack (id) ON DELETE CASCADE,
    pack_ref     text NOT NULL,
    label        text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    entry_point  text NOT NULL DEFAULT '',
    trigger_refs text[] NOT NULL DEFAULT '{}',
    parameters   jsonb NOT NULL DEFAULT '{}',
    config       jsonb NOT NULL DEFAULT '{}',
    enabled      boolean NOT NULL DEFAULT true,
    created      timestamptz NOT NULL DEFAULT now(),
    updated      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sensor_pack_idx ON attune.sensor (pack);

CREATE TABLE attune.rule (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref            text NOT NULL UNIQUE,
    pack           bigint NOT NULL REFERENCES attune.pack (id) ON DELETE CASCADE,
    pack_ref       text NOT NULL,
    label          text NOT NULL DEFAULT '',
    description    text NOT NULL DEFAULT '',
    -- A rule may not outlive what it names: deleting a trigger or action a rule still uses
    -- is a conflict, not a silent orphan.
    trigger        bigint NOT NULL REFERENCES attune.trigger (id) ON DELETE RESTRICT,
    trigger_ref    text NOT NULL,
    trigger_params jsonb NOT NULL DEFAULT '{}',
    conditions     jsonb NOT NULL DEFAULT '[]',
    action         bigint NOT NULL REFERENCES attune.action (id) ON DELETE RESTRICT,
    action_ref     text NOT NULL,
    action_params  jsonb NOT NULL DEFAULT '{}',
    enabled        boolean NOT NULL DEFAULT true,
    created        timestamptz NOT NULL DEFAULT now(),
    updated        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rule_pack_idx ON attune.rule (pack);
CREATE INDEX rule_trigger_enabled_idx ON attune.rule (trigger_ref) WHERE enabled;
CREATE INDEX rule_action_idx ON attune.rule (action);

CREATE TABLE attune.event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- trigger_ref is kept so that events survive their trigger's deletion.
    trigger     bigint REFERENCES attune.trigger (id) ON DELETE SET NULL,
    trigger_ref text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    -- Who fired it: 'timer', 'webhook', 'api' or a sensor ref.
    source      text NOT NULL DEFAULT '',
    -- Set when the event is meant for one rule only (each timer rule has its own schedule).
    rule_ref    text,
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_created_idx ON attune.event (created);
CREATE INDEX event_trigger_ref_idx ON attune.event (trigger_ref, created);

CREATE TABLE attune.enforcement (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule        bigint REFERENCES attune.rule (id) ON DELETE SET NULL,
    rule_ref    text NOT NULL,
    trigger_ref text NOT NULL,
    event       bigint NOT NULL REFERENCES attune.event (id) ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'processed', 'disabled')),
    -- Copies taken at match time, so that later rule edits do not rewrite history.
    payload     jsonb NOT NULL DEFAULT '{}',
    conditions  jsonb NOT NULL DEFAULT '[]',
    -- The rendered action parameters.
    config      jsonb NOT NULL DEFAULT '{}',
    -- Why evaluation or rendering failed, for operators to read through the API.
    reason      text,
    resolved_at timestamptz,
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now(),
    -- At-least-once delivery of event.created must not match a rule twice.
    CONSTRAINT enforcement_event_rule_key UNIQUE (event, rule_ref)
);
CREATE INDEX enforcement_created_idx ON attune.enforcement (created);
CREATE INDEX enforcement_status_idx ON attune.enforcement (created) WHERE status = 'created';

CREATE TABLE attune.worker (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    runners        text[] NOT NULL DEFAULT '{}',
    concurrency    integer NOT NULL DEFAULT 1 CHECK (concurrency > 0),
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    host           text NOT NULL DEFAULT '',
    pid            integer NOT NULL DEFAULT 0,
    last_heartbeat timestamptz NOT NULL DEFAULT now(),
    created        timestamptz NOT NULL DEFAULT now(),
    updated        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX worker_active_idx ON attune.worker (last_heartbeat) WHERE status = 'active';

CREATE TABLE attune.execution (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action          bigint REFERENCES attune.action (id) ON DELETE SET NULL,
    action_ref      text NOT NULL,
    status          text NOT NULL DEFAULT 'requested' CHECK (status IN (
                        'requested', 'scheduling', 'scheduled', 'running', 'completed', 'failed',
                        'canceling', 'cancelled', 'timeout', 'abandoned')),
    parameters      jsonb NOT NULL DEFAULT '{}',
    result          jsonb,
    -- Why the execution ended as it did when the result alone does not say.
    reason          text,
    -- One execution per enforcement: a redelivered enforcement.created creates nothing new.
    enforcement     bigint UNIQUE REFERENCES attune.enforcement (id) ON DELETE SET NULL,
    parent          bigint REFERENCES attune.execution (id) ON DELETE SET NULL,
    worker          bigint REFERENCES attune.worker (id) ON DELETE SET NULL,
    timeout_seconds integer,
    created         timestamptz NOT NULL DEFAULT now(),
    updated         timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX execution_created_idx ON attune.execution (created);
CREATE INDEX execution_action_ref_idx ON attune.execution (action_ref, created);
CREATE INDEX execution_parent_idx ON attune.execution (parent) WHERE parent IS NOT NULL;
-- Sweepers look for executions stuck before a terminal status; this stays small.
CREATE INDEX execution_unfinished_idx ON attune.execution (status, updated)
    WHERE status IN ('requested', 'scheduling', 'scheduled', 'running', 'canceling');
CREATE INDEX execution_worker_running_idx ON attune.execution (worker)
    WHERE status IN ('scheduled', 'running', 'canceling');

CREATE TABLE attune.policy (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref                    text NOT NULL UNIQUE,
    -- Set when the policy came from a pack's policies/ directory.
    pack                   bigint REFERENCES attune.pack (id) ON DELETE CASCADE,
    -- Exactly one scope: one action, or every action of a pack.
    action_ref             text,
    pack_ref               text,
    enabled                boolean NOT NULL DEFAULT true,
    concurrency_limit      integer CHECK (concurrency_limit > 0),
    concurrency_method     text NOT NULL DEFAULT 'enqueue' CHECK (concurrency_method IN ('enqueue', 'cancel')),
    concurrency_parameters text[] NOT NULL DEFAULT '{}',
    rate_max_executions    integer CHECK (rate_max_executions > 0),
    rate_window_seconds    integer CHECK (rate_window_seconds > 0),
    rate_method            text NOT NULL DEFAULT 'enqueue' CHECK (rate_method IN ('enqueue', 'cancel')),
    max_queue_length       integer CHECK (max_queue_length >= 0),
    queue_timeout_seconds  integer CHECK (queue_timeout_seconds > 0),
    created                timestamptz NOT NULL DEFAULT now(),
    updated                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT policy_one_scope CHECK ((action_ref IS NULL) <> (pack_ref IS NULL)),
    CONSTRAINT policy_rate_complete CHECK ((rate_max_executions IS NULL) = (rate_window_seconds IS NULL))
);
CREATE INDEX policy_action_ref_idx ON attune.policy (action_ref) WHERE action_ref IS NOT NULL;
CREATE INDEX policy_pack_ref_idx ON attune.policy (pack_ref) WHERE pack_ref IS NOT NULL;

-- Admission: per (action, group key) the slots in use, and one entry per execution that holds
-- or waits for a slot. Locking the group row serialises admission for that group across every
-- executor process; releasing deletes the entry, so a slot is freed exactly once however often
-- a completion arrives.
CREATE TABLE attune.admission_group (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_ref text NOT NULL,
    group_key  text NOT NULL DEFAULT '',
    active     integer NOT NULL DEFAULT 0 CHECK (active >= 0),
    created    timestamptz NOT NULL DEFAULT now(),
    updated    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT admission_group_key UNIQUE (action_ref, group_key)
);

CREATE TABLE attune.admission_entry (
    execution       bigint PRIMARY KEY REFERENCES attune.execution (id) ON DELETE CASCADE,
    admission_group bigint NOT NULL REFERENCES attune.admission_group (id) ON DELETE CASCADE,
    state           text NOT NULL CHECK (state IN ('queued', 'active')),
    -- FIFO order is the execution's creation order; id breaks ties.
    enqueued_at     timestamptz NOT NULL,
    admitted_at     timestamptz,
    created         timestamptz NOT NULL DEFAULT now(),
    updated         timestamptz NOT NULL DEFAULT now()
);
-- The head-of-queue lookup must use this index: ordering by the primary key instead makes each
-- claim scan past every entry claimed before it (see ARCHITECTURE.md, the FIFO pitfall).
CREATE INDEX admission_entry_fifo_idx ON attune.admission_entry (admission_group, enqueued_at, execution)
    WHERE state = 'queued';
CREATE INDEX admission_entry_active_idx ON attune.admission_entry (admission_group) WHERE state = 'active';

-- +goose Down
DROP TABLE attune.admission_entry;
DROP TABLE attune.admission_group;
DROP TABLE attune.policy;
DROP TABLE attune.execution;
DROP TABLE attune.worker;
DROP TABLE attune.enforcement;
DROP TABLE attune.event;
DROP TABLE attune.rule;
DROP TABLE attune.sensor;
DROP TABLE attune.trigger;
DROP TABLE attune.action;
DROP TABLE attune.pack;
