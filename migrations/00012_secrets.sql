-- The names of the secret parameters, recorded on each execution and enforcement as it is
-- created, so that their values are masked wherever they are shown by the names that applied
-- then, not by whatever the action's schema says later. The values themselves stay in clear
-- in `parameters` and `config` for now: the action needs them.
--
-- Rows made before this migration get the secret names their action declares now (an
-- enforcement through its rule's action); rows whose action is gone keep none. Their
-- `updated` is left alone: nothing about them changed.

-- +goose Up
ALTER TABLE attune.execution ADD COLUMN secrets text[] NOT NULL DEFAULT '{}';
ALTER TABLE attune.enforcement ADD COLUMN secrets text[] NOT NULL DEFAULT '{}';

CREATE TEMPORARY TABLE action_secrets ON COMMIT DROP AS
    SELECT a.id, array_agg(p.key ORDER BY p.key) AS names
    FROM attune.action a,
        jsonb_each(CASE WHEN jsonb_typeof(a.parameters) = 'object' THEN a.parameters ELSE '{}' END) p
    WHERE p.value->'secret' = 'true'
    GROUP BY a.id;

ALTER TABLE attune.execution DISABLE TRIGGER execution_touch;
UPDATE attune.execution x SET secrets = s.names FROM action_secrets s WHERE x.action = s.id;
ALTER TABLE attune.execution ENABLE TRIGGER execution_touch;

ALTER TABLE attune.enforcement DISABLE TRIGGER enforcement_touch;
UPDATE attune.enforcement e SET secrets = s.names
    FROM attune.rule r JOIN action_secrets s ON s.id = r.action
    WHERE e.rule = r.id;
ALTER TABLE attune.enforcement ENABLE TRIGGER enforcement_touch;

-- +goose Down
ALTER TABLE attune.enforcement DROP COLUMN secrets;
ALTER TABLE attune.execution DROP COLUMN secrets;
