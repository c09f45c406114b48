-- One line per table instead of four: what every module migration repeats.
--   CALL atrium_tenant_table('x_things');   -- forced row-level security, one tenant per transaction
--   CALL atrium_owned_table('x_things');    -- plus the owner scope of routes declared .owned(...)
-- Only the owner role (which runs migrations and owns the tables) may call them.
CREATE PROCEDURE atrium_tenant_table(target regclass)
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant())',
        target);
END
$$;

CREATE PROCEDURE atrium_owned_table(target regclass)
    LANGUAGE plpgsql
    AS $$
BEGIN
    CALL atrium_tenant_table(target);
    EXECUTE format(
        'CREATE POLICY owner_scope ON %s AS RESTRICTIVE USING (atrium_owner_visible(owner_id)) WITH CHECK (atrium_owner_visible(owner_id))',
        target);
END
$$;

REVOKE ALL ON PROCEDURE atrium_tenant_table(regclass) FROM PUBLIC;
REVOKE ALL ON PROCEDURE atrium_owned_table(regclass) FROM PUBLIC;
