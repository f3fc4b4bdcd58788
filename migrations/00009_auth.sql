-- Who may use the API, and how they prove it (the api role writes all of these):
--   identity         a person or a system, with a password hash and a role
--   api_token        long-lived tokens for automation; only a SHA-256 of the secret is kept
--   auth_key         the key every api replica signs and checks access tokens with, made by
--                    the first replica that needs it
--   webhook_secret   the shared secret a webhook url's senders sign their bodies with

-- +goose Up
CREATE TABLE attune.identity (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login         text NOT NULL UNIQUE CHECK (login ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    -- A PHC string: $argon2id$v=19$m=...,t=...,p=...$salt$hash
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    -- Access and refresh tokens carry the version they were issued under; changing the
    -- password advances it, and every token issued before stops working.
    token_version integer NOT NULL DEFAULT 1,
    created       timestamptz NOT NULL DEFAULT now(),
    updated       timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER identity_touch BEFORE UPDATE ON attune.identity FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();

CREATE TABLE attune.api_token (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    identity      bigint NOT NULL REFERENCES attune.identity (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT '',
    -- The first characters of the secret, so that people can tell their tokens apart.
    prefix        text NOT NULL,
    secret_sha256 bytea NOT NULL UNIQUE,
    -- A token may act with less than its identity's role, never more; null means the
    -- identity's role.
    role          text CHECK (role IN ('admin', 'operator', 'viewer')),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    created       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_token_identity_idx ON attune.api_token (identity);

CREATE TABLE attune.auth_key (
    id      smallint PRIMARY KEY CHECK (id = 1),
    secret  bytea NOT NULL CHECK (length(secret) >= 32),
    created timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE attune.webhook_secret (
    url     text PRIMARY KEY,
    secret  text NOT NULL CHECK (length(secret) >= 16),
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER webhook_secret_touch BEFORE UPDATE ON attune.webhook_secret FOR EACH ROW EXECUTE FUNCTION attune.touch_updated();

-- +goose Down
DROP TABLE attune.webhook_secret;
DROP TABLE attune.auth_key;
DROP TABLE attune.api_token;
DROP TABLE attune.identity;
