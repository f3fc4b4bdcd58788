-- Upkeep of the tables every execution passes through.
--   execution_created_idx  served no query (listing goes by id, sweepers by status through
--                          execution_unfinished_idx), and every status change of an execution,
--                          which cannot be a HOT update, wrote an entry into it.
--   autovacuum             the scheduler and admission read partial indexes from their front,
--                          where each execution that passed through leaves a dead entry until
--                          VACUUM removes it. The default (a fifth of the table dead) would let
--                          millions pile up in a large execution table; vacuum these tables
--                          after a small share instead. (Where autovacuum is off altogether, as
--                          on the project's CI machine, these settings do nothing.)

-- +goose Up
DROP INDEX attune.execution_created_idx;
ALTER TABLE attune.execution SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE attune.admission_entry SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
ALTER TABLE attune.admission_group SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- +goose Down
ALTER TABLE attune.admission_group RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold);
ALTER TABLE attune.admission_entry RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold);
ALTER TABLE attune.execution RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
    autovacuum_analyze_scale_factor);
CREATE INDEX execution_created_idx ON attune.execution (created);
