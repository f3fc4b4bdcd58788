-- The requester filters of the execution list (GET /api/v1/executions?requested_by=,
-- attune execution list --requested-by) read each half of their semi-join on an index
-- instead of scanning every enforcement, event or audit entry:
--   enforcement_rule_ref_idx   rule:REF, and ?rule_ref=: the enforcements of a rule.
--   event_sensor_source_idx    sensor:REF: the events a custom sensor emitted. Partial: only
--                              a sensor's source has a dot, and the timers' and webhooks'
--                              events, most of the table, take no room in it.
--   audit_execution_token_idx  token:NAME: the executions requested with an API token.
-- Built CONCURRENTLY, outside a transaction, so that an upgrade does not block the writes to
-- these tables while they build (the pipeline writes enforcements and events all the time).
-- Each is dropped first: a build that failed leaves an invalid index behind, and running the
-- migration again then builds it anew.

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS attune.enforcement_rule_ref_idx;
CREATE INDEX CONCURRENTLY enforcement_rule_ref_idx ON attune.enforcement (rule_ref);
DROP INDEX CONCURRENTLY IF EXISTS attune.event_sensor_source_idx;
CREATE INDEX CONCURRENTLY event_sensor_source_idx ON attune.event (source) WHERE source LIKE '%.%';
DROP INDEX CONCURRENTLY IF EXISTS attune.audit_execution_token_idx;
CREATE INDEX CONCURRENTLY audit_execution_token_idx ON attune.audit (token) WHERE object_kind = 'execution';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS attune.audit_execution_token_idx;
DROP INDEX CONCURRENTLY IF EXISTS attune.event_sensor_source_idx;
DROP INDEX CONCURRENTLY IF EXISTS attune.enforcement_rule_ref_idx;
