-- Bulk import as a kernel facility: any module's imports, their stored files and their
-- rejected rows. A module declares its entities (fields, row checks, one set-based
-- landing statement); the kernel reads the file, stages it with COPY, lands it and
-- keeps the record here. Imports are owned records: a user sees their own, a caller
-- holding the module's `.any` permission every one.
CREATE TABLE imports (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    module text NOT NULL,
    entity text NOT NULL,
    format text NOT NULL CHECK (format IN ('csv', 'ndjson')),
    mode text NOT NULL CHECK (mode IN ('upsert', 'insert')),
    error_policy text NOT NULL CHECK (error_policy IN ('all_or_nothing', 'skip_invalid')),
    mapping jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Whether the importer could see every owner's records when the import started.
    sees_all boolean NOT NULL DEFAULT false,
    state text NOT NULL DEFAULT 'uploading' CHECK (state IN ('uploading', 'queued', 'running', 'succeeded', 'failed')),
    bytes bigint NOT NULL DEFAULT 0,
    rows_read bigint NOT NULL DEFAULT 0,
    rows_written bigint NOT NULL DEFAULT 0,
    rows_unchanged bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    failure text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX imports_newest ON imports (tenant_id, module, owner_id, created_at DESC);

-- The uploaded file in 1 MiB chunks, kept until the import ends.
CREATE TABLE import_chunks (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    import_id uuid NOT NULL,
    position integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (tenant_id, import_id, position),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id) ON DELETE CASCADE
);

-- Rejected rows: the line of the file and why.
CREATE TABLE import_errors (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    import_id uuid NOT NULL,
    line bigint NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (tenant_id, import_id, line, reason),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id) ON DELETE CASCADE
);

-- Chunks and rejected rows are reached only through their import, whose owner scope
-- the routes check first.
CALL atrium_owned_table('imports');
CALL atrium_tenant_table('import_chunks');
CALL atrium_tenant_table('import_errors');
