-- Platform foundations: the tenant-scope functions every row-level security policy
-- uses, and the application role's privileges.
--
-- The application role (atrium_app) owns nothing and cannot bypass row-level
-- security. It receives plain DML on the tables the owner role creates from here on;
-- a migration that wants less for a table revokes it there.

-- The tenant of the current transaction, or NULL when none is set. Atrium sets
-- app.tenant_id with set_config(..., true), so it lasts one transaction only; after
-- that the setting reads as '' rather than NULL, hence nullif.
CREATE FUNCTION atrium_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

-- True in a transaction the kernel opened for cross-tenant platform work (claiming
-- jobs, fanning out schedules). Only the kernel's queue tables honour it.
CREATE FUNCTION atrium_platform_scope() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('app.scope', true), '') = 'platform' $$;

GRANT USAGE ON SCHEMA public TO atrium_app;
GRANT SELECT ON atrium_migrations TO atrium_app;
ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO atrium_app;
ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES TO atrium_app;
