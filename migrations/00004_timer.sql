-- What the built-in timers (sensor role) need:
--   timer_tick  one row per tick a timer rule fired, written in the transaction that inserts
--               the tick's event. Tick times are aligned to the schedule (not to when a replica
--               woke up), so a new leader that tries a tick the previous leader already fired
--               hits the primary key and skips it. The leader prunes rows older than a day.

-- +goose Up
CREATE TABLE attune.timer_tick (
    rule_ref text NOT NULL,
    tick_at  timestamptz NOT NULL,
    created  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_ref, tick_at)
);
CREATE INDEX timer_tick_tick_at_idx ON attune.timer_tick (tick_at);

-- +goose Down
DROP TABLE attune.timer_tick;
