-- Sessions from memory. Every server keeps the sessions it has checked (the user, the
-- roles, custom-role permissions, when the session expires) and drops a tenant's when one
-- of these triggers names the tenant on atrium_tenancy, after the change commits: a
-- session revoked or shortened, a user disabled or deleted, a role granted or taken
-- away, a custom role's permissions changed or the role deleted.
CREATE TRIGGER sessions_notify_update AFTER UPDATE ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
                       OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION atrium_notify_tenancy();
CREATE TRIGGER sessions_notify_delete AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION atrium_notify_tenancy();
CREATE TRIGGER users_notify_update AFTER UPDATE ON users
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION atrium_notify_tenancy();
CREATE TRIGGER users_notify_delete AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION atrium_notify_tenancy();
CREATE TRIGGER user_roles_notify AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION atrium_notify_tenancy();
CREATE TRIGGER roles_notify_update AFTER UPDATE ON roles
    FOR EACH ROW WHEN (OLD.permissions IS DISTINCT FROM NEW.permissions OR OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION atrium_notify_tenancy();
CREATE TRIGGER roles_notify_delete AFTER DELETE ON roles
    FOR EACH ROW EXECUTE FUNCTION atrium_notify_tenancy();

-- atrium_open_session_request, also returning when the session expires, which bounds
-- how long a server may serve it from memory.
CREATE FUNCTION atrium_open_session(tenant uuid, principal uuid, session uuid)
    RETURNS TABLE (roles text[], permissions text[], expires_at timestamptz)
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM set_config('app.tenant_id', tenant::text, true), set_config('app.principal_id', principal::text, true);
    RETURN QUERY
        SELECT coalesce(array_agg(DISTINCT r.role) FILTER (WHERE r.role IS NOT NULL), '{}'),
               coalesce((SELECT array_agg(DISTINCT p) FROM user_roles ur
                         JOIN roles c ON c.tenant_id = ur.tenant_id AND c.name = ur.role, unnest(c.permissions) p
                         WHERE ur.user_id = principal), '{}'),
               s.expires_at
        FROM sessions s
        JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id AND u.status = 'active'
        LEFT JOIN user_roles r ON r.tenant_id = u.tenant_id AND r.user_id = u.id
        WHERE s.id = session AND s.user_id = principal AND s.revoked_at IS NULL AND s.expires_at > now()
        GROUP BY s.id, s.expires_at;
END
$$;
