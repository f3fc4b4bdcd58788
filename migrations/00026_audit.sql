-- attune.audit records who changed what: executions requested, rerun, cancelled, paused and
-- resumed through the API, and every change of a pack, action, trigger, sensor, rule, policy,
-- key, identity, API token or webhook secret, whoever made it (a person through the API, or
-- `system` and `cli` for changes made at serve and by the database commands). Each row is
-- written in the transaction of the change it records. It holds no foreign key: an entry
-- outlives its actor and its object, so the actor's login and the object's ref are copies.
-- detail never holds a secret value.

-- +goose Up
CREATE TABLE attune.audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created     timestamptz NOT NULL DEFAULT now(),
    -- The identity that acted, while it was one (null for system, cli, anonymous).
    actor_id    bigint,
    actor       text NOT NULL,
    -- The name of the API token the request came with, when it came with one.
    token       text,
    -- What was done, noun.verb: execution.cancel, rule.update, key.set, ...
    kind        text NOT NULL CHECK (kind ~ '^[a-z_]+\.[a-z_]+$'),
    object_kind text NOT NULL,
    object      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_created_idx ON attune.audit (created);
CREATE INDEX audit_actor_idx ON attune.audit (actor, created);
-- text_pattern_ops serves the kind filter, a byte range (kind ~>=~ 'rule.' AND kind ~<~ 'rule/'),
-- whatever the database's collation.
CREATE INDEX audit_kind_idx ON attune.audit (kind text_pattern_ops, created);
CREATE INDEX audit_object_idx ON attune.audit (object_kind, object);
-- The executions an identity requested: execution list --requested-by LOGIN.
CREATE INDEX execution_requested_by_idx ON attune.execution (requested_by) WHERE requested_by IS NOT NULL;

-- +goose Down
DROP INDEX attune.execution_requested_by_idx;
DROP TABLE attune.audit;
