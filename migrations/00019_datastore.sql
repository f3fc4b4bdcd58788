-- The datastore: keys an operator or an action sets and templates read as kv.<scope>.<name>.
-- A secret key keeps only the seal token of its value (package store/seal), never the value.
-- An execution records who requested it, so that its templates read that identity's user
-- keys; and a running action holds a short-lived token, known here only by its SHA-256, with
-- which it writes keys back through the API.

-- +goose Up
CREATE TABLE attune.key (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- 'system', 'pack.<pack ref>', or 'user' (then owner is the identity whose key it is).
    scope   text NOT NULL CHECK (scope = 'system' OR scope = 'user' OR scope ~ '^pack\.[a-z][a-z0-9_-]*$'),
    owner   bigint REFERENCES attune.identity (id) ON DELETE CASCADE,
    name    text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_-]{0,127}$'),
    secret  boolean NOT NULL DEFAULT false,
    -- value when the key is not secret; sealed (a seal token of the value's JSON) when it is.
    value   jsonb,
    sealed  text,
    -- After expires the key is gone: reads skip it, and a sweep deletes it.
    expires timestamptz,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope = 'user') = (owner IS NOT NULL)),
    CHECK (CASE WHEN secret THEN sealed IS NOT NULL AND value IS NULL ELSE value IS NOT NULL AND sealed IS NULL END)
);
CREATE UNIQUE INDEX key_identity ON attune.key (scope, COALESCE(owner, 0), name);
CREATE INDEX key_expires ON attune.key (expires) WHERE expires IS NOT NULL;
CREATE TRIGGER key_touch BEFORE UPDATE ON attune.key FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();

ALTER TABLE attune.execution ADD COLUMN requested_by bigint REFERENCES attune.identity (id) ON DELETE SET NULL;

CREATE TABLE attune.execution_token (
    hash      bytea PRIMARY KEY,
    execution bigint NOT NULL REFERENCES attune.execution (id) ON DELETE CASCADE,
    expires   timestamptz NOT NULL
);
CREATE INDEX execution_token_execution ON attune.execution_token (execution);

-- +goose Down
DROP TABLE attune.execution_token;
ALTER TABLE attune.execution DROP COLUMN requested_by;
DROP TABLE attune.key;
