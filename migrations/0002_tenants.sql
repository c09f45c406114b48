-- Tenants are the platform's own rows: the table is read by the application role to
-- resolve /v1/tenants/{slug}/..., and written by operators (the admin CLI runs as the
-- owner role).
CREATE TABLE tenants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    plan text NOT NULL DEFAULT 'free',
    settings jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
REVOKE INSERT, UPDATE, DELETE ON tenants FROM atrium_app;

-- Which modules each tenant has switched on. Installing a module creates its tables
-- for everyone; this row is what lets a tenant use them.
CREATE TABLE tenant_modules (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    module_id text NOT NULL,
    enabled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, module_id)
);
ALTER TABLE tenant_modules ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_modules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_modules
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());
