-- Custom sensors (a pack's sensors/*.yaml) run as processes the sensor role supervises, each on
-- one replica at a time: the one holding its lease here. A lease lasts until expires (on
-- PostgreSQL's clock); its holder renews it well ahead and stops the process the moment a
-- renewal fails, and another replica takes it only once it has expired. The row also keeps
-- what the API shows of the sensor: its holder's status, restarts, last error, pid, and the
-- SHA-256 of the token the running process was given (good while the lease is).

-- +goose Up
CREATE TABLE attune.sensor_lease (
    sensor_ref text PRIMARY KEY REFERENCES attune.sensor (ref) ON DELETE CASCADE ON UPDATE CASCADE,
    holder     text NOT NULL,
    expires    timestamptz NOT NULL,
    token_hash bytea UNIQUE,
    status     text NOT NULL DEFAULT 'starting' CHECK (status IN ('starting', 'running', 'backoff', 'stopped')),
    restarts   integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    started_at timestamptz,
    pid        integer
);

-- The sensor role follows sensors on the channel it follows rules on: a sensor enabled,
-- disabled or changed starts or stops at once, as a rule's change does.
CREATE TRIGGER sensor_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON attune.sensor
    FOR EACH STATEMENT EXECUTE FUNCTION attune.notify_changed('attune_rules_changed');

-- +goose Down
DROP TRIGGER sensor_changed ON attune.sensor;
DROP TABLE attune.sensor_lease;
