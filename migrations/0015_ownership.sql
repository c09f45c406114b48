-- Ownership as a kernel concept.
--
-- A module's owned table adds, next to tenant_isolation, one restrictive policy:
--     CREATE POLICY owner_scope ON <table> AS RESTRICTIVE
--         USING (atrium_owner_visible(owner_id)) WITH CHECK (atrium_owner_visible(owner_id));
-- The kernel sets app.principal_id to the acting user of every request (a user, or the
-- user an API key acts for) and, for routes declared .owned("<prefix>"), sets
-- app.owner_scope = 'any' when the caller holds <prefix>.any. A handler that forgets an
-- owner filter still cannot show one user another's rows; a transaction that sets
-- neither sees no owned row at all.
CREATE FUNCTION atrium_owner_visible(owner uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('app.owner_scope', true), '') = 'any'
              OR owner = nullif(current_setting('app.principal_id', true), '')::uuid $$;

-- An API key acts for a user of its tenant (its creator, or a service user named when it
-- was made), so rows it creates have an owner and owner scope applies to it as to that
-- user. A key of no user (made before this, or by an operator without --acts-for) can
-- read and write only what is not owned.
ALTER TABLE api_keys ADD COLUMN acts_for uuid;
ALTER TABLE api_keys ADD FOREIGN KEY (tenant_id, acts_for) REFERENCES users (tenant_id, id) ON DELETE CASCADE;

DROP FUNCTION atrium_open_api_key_request(uuid, uuid);
CREATE FUNCTION atrium_open_api_key_request(tenant uuid, key uuid)
    RETURNS TABLE (secret_hash bytea, permissions text[], stale boolean, acts_for uuid)
    LANGUAGE plpgsql
    AS $$
DECLARE
    live record;
BEGIN
    PERFORM set_config('app.tenant_id', tenant::text, true);
    SELECT k.secret_hash, k.permissions, k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute' AS stale, k.acts_for
        INTO live
        FROM api_keys k
        LEFT JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.acts_for
        WHERE k.id = key AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
          AND (k.acts_for IS NULL OR u.status = 'active');
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM set_config('app.principal_id', coalesce(live.acts_for, key)::text, true);
    RETURN QUERY SELECT live.secret_hash, live.permissions, live.stale, live.acts_for;
END
$$;
