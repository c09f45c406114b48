-- What the legacy import (atrium portfolio import-legacy) brought in: each record of the
-- old JSON stores by file and JSON Pointer, as it was (unknown fields included), with
-- the row it became. A second import of the same files finds every record here and
-- creates nothing; a record whose text changed updates its row.
CREATE TABLE portfolio_legacy_records (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    file text NOT NULL CHECK (file IN ('users_db.json', 'conversations.json')),
    pointer text NOT NULL CHECK (length(pointer) BETWEEN 1 AND 2000),
    entity text NOT NULL CHECK (entity ~ '^[a-z_]+$'),
    raw jsonb NOT NULL,
    target_id uuid,
    imported_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, file, pointer)
);
CALL atrium_tenant_table('portfolio_legacy_records');
