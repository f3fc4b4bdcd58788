-- execution_created_idx served no query (listing goes by id, sweepers by status through
-- execution_unfinished_idx), and every update of an execution that changes its status, which
-- cannot be a HOT update, wrote an entry into it: four times per execution.

-- +goose Up
DROP INDEX attune.execution_created_idx;

-- +goose Down
CREATE INDEX execution_created_idx ON attune.execution (created);
