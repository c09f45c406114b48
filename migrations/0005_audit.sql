-- The append-only audit log of security events and administrative actions. The
-- application role may add and read entries, never change or remove them.
CREATE TABLE audit_events (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    action text NOT NULL,
    actor_type text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'operator', 'anonymous', 'system')),
    actor_id text,
    subject text,
    ip inet,
    user_agent text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_events_time ON audit_events (tenant_id, occurred_at DESC);
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM atrium_app;
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
    USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
