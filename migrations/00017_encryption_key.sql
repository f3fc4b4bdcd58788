-- The encryption key Attune generates for itself when none is configured, so that secret
-- values are sealed from the first start. It sits beside the data it protects, which is why
-- every start that uses it warns; a configured key takes over for new values, and this one
-- still opens the values it sealed until `attune key rotate` has moved them. One row at most:
-- replicas starting together insert one and all read the winner.

-- +goose Up
CREATE TABLE attune.generated_key (
    only_one boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    id text NOT NULL,
    material text NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE attune.generated_key;
