-- Packs travel as content: registering a pack stores its files here as one immutable version,
-- a gzip'd tar in canonical form, named by the SHA-256 of the canonical listing of its files
-- (path, mode and content hash of each). Workers fetch a version once per hash into their own
-- cache, so no host needs the pack's directory. pack.current_version is the version new
-- executions run; an execution already dispatched runs the version its dispatch names.

-- +goose Up
CREATE TABLE attune.pack_version (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pack    bigint NOT NULL REFERENCES attune.pack (id) ON DELETE CASCADE,
    hash    text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    size    bigint NOT NULL CHECK (size >= 0),
    files   integer NOT NULL CHECK (files >= 0),
    archive bytea NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pack, hash)
);

ALTER TABLE attune.pack ADD COLUMN current_version bigint REFERENCES attune.pack_version (id);

-- +goose Down
ALTER TABLE attune.pack DROP COLUMN current_version;
DROP TABLE attune.pack_version;
