-- The request path in one transaction, and tenants served from memory.
--
-- Every server keeps tenants (status, plan, enabled modules) in memory and LISTENs on
-- atrium_tenancy; these triggers tell it which tenant changed, after the change commits
-- (NOTIFY is delivered at commit, never for a rolled-back change).
CREATE FUNCTION atrium_notify_tenancy() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('atrium_tenancy', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END::text);
    ELSE
        PERFORM pg_notify('atrium_tenancy', CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION atrium_notify_tenancy();
CREATE TRIGGER tenant_modules_notify AFTER INSERT OR UPDATE OR DELETE ON tenant_modules
    FOR EACH ROW EXECUTE FUNCTION atrium_notify_tenancy();

-- A tenant and its enabled modules by slug, in one statement. The modules are read in
-- platform scope, which the function restores before it returns, so calling it inside
-- any transaction leaves that transaction's scope as it was.
CREATE FUNCTION atrium_tenant_by_slug(wanted text)
    RETURNS TABLE (id uuid, slug text, name text, status text, plan text, created_at timestamptz, updated_at timestamptz, modules text[])
    LANGUAGE plpgsql
    AS $$
DECLARE
    previous text := coalesce(current_setting('app.scope', true), '');
BEGIN
    PERFORM set_config('app.scope', 'platform', true);
    RETURN QUERY
        SELECT t.id, t.slug, t.name, t.status, t.plan, t.created_at, t.updated_at,
               coalesce((SELECT array_agg(m.module_id ORDER BY m.module_id) FROM tenant_modules m WHERE m.tenant_id = t.id), '{}')
        FROM tenants t WHERE t.slug = wanted;
    PERFORM set_config('app.scope', previous, true);
END
$$;

-- Opens an authenticated request: scopes the transaction to the tenant and the user
-- (transaction-locally), then returns the user's roles and custom-role permissions if
-- the session and the user are live — no row when they are not. One round trip for
-- what used to be a transaction of its own.
CREATE FUNCTION atrium_open_session_request(tenant uuid, principal uuid, session uuid)
    RETURNS TABLE (roles text[], permissions text[])
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM set_config('app.tenant_id', tenant::text, true), set_config('app.principal_id', principal::text, true);
    RETURN QUERY
        SELECT coalesce(array_agg(DISTINCT r.role) FILTER (WHERE r.role IS NOT NULL), '{}'),
               coalesce((SELECT array_agg(DISTINCT p) FROM user_roles ur
                         JOIN roles c ON c.tenant_id = ur.tenant_id AND c.name = ur.role, unnest(c.permissions) p
                         WHERE ur.user_id = principal), '{}')
        FROM sessions s
        JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id AND u.status = 'active'
        LEFT JOIN user_roles r ON r.tenant_id = u.tenant_id AND r.user_id = u.id
        WHERE s.id = session AND s.user_id = principal AND s.revoked_at IS NULL AND s.expires_at > now()
        GROUP BY s.id;
END
$$;

-- The same for an API key: scopes the transaction to the tenant and the key, and
-- returns the live key's secret hash (compared by the caller in constant time), its
-- permissions, and whether its last use is over a minute old.
CREATE FUNCTION atrium_open_api_key_request(tenant uuid, key uuid)
    RETURNS TABLE (secret_hash bytea, permissions text[], stale boolean)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM set_config('app.tenant_id', tenant::text, true), set_config('app.principal_id', key::text, true);
    RETURN QUERY
        SELECT k.secret_hash, k.permissions, k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'
        FROM api_keys k WHERE k.id = key AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now());
END
$$;

-- API calls are counted in memory and flushed as one event per tenant, process and
-- second, whose quantity is the number of calls: kernel.api_calls becomes a sum. Every
-- event recorded before has quantity 1, so for past months the sum equals the count.
UPDATE meters SET aggregation = 'sum' WHERE name = 'kernel.api_calls';
