-- The job queue. It is a platform table: workers claim work across tenants with
-- FOR UPDATE SKIP LOCKED, so it is not distributed by tenant. Row-level security is
-- still forced: a tenant transaction sees only its own jobs, and only the kernel's
-- platform scope sees them all.
CREATE TABLE jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kind text NOT NULL,
    module_id text,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'succeeded', 'dead', 'canceled')),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    run_at timestamptz NOT NULL DEFAULT now(),
    unique_key text,
    locked_by text,
    lease_expires_at timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
COMMENT ON TABLE jobs IS 'atrium:platform';
CREATE INDEX jobs_ready ON jobs (run_at) WHERE state = 'pending';
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_tenant ON jobs (tenant_id, created_at);
-- A unique key names a job that must not be queued twice while one is still waiting
-- or running (for example one sync per exchange account).
CREATE UNIQUE INDEX jobs_unique_key ON jobs (
    coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), kind, unique_key
) WHERE unique_key IS NOT NULL AND state IN ('pending', 'running');
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON jobs
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());

-- Recurring schedules declared by the kernel and the modules, synchronised at worker
-- start. next_run_at advances under a row lock, so one worker fires each slot.
CREATE TABLE job_schedules (
    name text PRIMARY KEY,
    kind text NOT NULL,
    module_id text,
    interval_seconds integer NOT NULL CHECK (interval_seconds > 0),
    per_tenant boolean NOT NULL DEFAULT false,
    next_run_at timestamptz NOT NULL,
    last_run_at timestamptz
);
