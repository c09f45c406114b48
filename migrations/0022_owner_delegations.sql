-- Delegation: an owner lets another user of the tenant reach their owned rows of one
-- scope (an ownership prefix such as 'portfolio.records'): an advisor reads the
-- portfolios of the clients assigned to them, a receptionist the calendars of the
-- staff they book for. Read-only unless can_write.
--
-- A module opts a table in with
--     CALL atrium_delegated_table('x_things', 'x.records');
-- which is atrium_owned_table with the owner policy split by command: rows are readable
-- by their owner, by callers holding <prefix>.any, and by delegates of the owner in that
-- scope; writable by the same, delegates only with can_write. A delegation in one scope
-- opens no table of another.
CREATE TABLE owner_delegations (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    scope text NOT NULL CHECK (scope ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    delegate_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    can_write boolean NOT NULL DEFAULT false,
    granted_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, scope, delegate_id, owner_id),
    UNIQUE (tenant_id, id),
    CONSTRAINT owner_delegations_owner FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT owner_delegations_delegate FOREIGN KEY (tenant_id, delegate_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT owner_delegations_not_self CHECK (owner_id <> delegate_id)
);
COMMENT ON CONSTRAINT owner_delegations_owner ON owner_delegations IS 'problem: 422 unknown_user owner is not a user of this tenant';
COMMENT ON CONSTRAINT owner_delegations_delegate ON owner_delegations IS 'problem: 422 unknown_user delegate is not a user of this tenant';
COMMENT ON CONSTRAINT owner_delegations_not_self ON owner_delegations IS 'problem: 422 validation_failed delegate an owner reaches their own rows already';
CREATE INDEX owner_delegations_by_owner ON owner_delegations (tenant_id, scope, owner_id);
CREATE INDEX owner_delegations_page ON owner_delegations (tenant_id, scope, created_at, id);
CALL atrium_tenant_table('owner_delegations');

CREATE FUNCTION atrium_owner_delegated(owner uuid, delegation_scope text, writing boolean) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT EXISTS (
              SELECT 1 FROM owner_delegations d
              WHERE d.tenant_id = atrium_current_tenant() AND d.scope = delegation_scope
                AND d.delegate_id = nullif(current_setting('app.principal_id', true), '')::uuid
                AND d.owner_id = owner AND (d.can_write OR NOT writing)) $$;

CREATE PROCEDURE atrium_delegated_table(target regclass, delegation_scope text)
    LANGUAGE plpgsql
    AS $$
BEGIN
    CALL atrium_tenant_table(target);
    EXECUTE format(
        'CREATE POLICY owner_read ON %s AS RESTRICTIVE FOR SELECT USING (atrium_owner_visible(owner_id) OR atrium_owner_delegated(owner_id, %L, false))',
        target, delegation_scope);
    EXECUTE format(
        'CREATE POLICY owner_insert ON %s AS RESTRICTIVE FOR INSERT WITH CHECK (atrium_owner_visible(owner_id) OR atrium_owner_delegated(owner_id, %L, true))',
        target, delegation_scope);
    EXECUTE format(
        'CREATE POLICY owner_update ON %s AS RESTRICTIVE FOR UPDATE USING (atrium_owner_visible(owner_id) OR atrium_owner_delegated(owner_id, %L, true)) WITH CHECK (atrium_owner_visible(owner_id) OR atrium_owner_delegated(owner_id, %L, true))',
        target, delegation_scope, delegation_scope);
    EXECUTE format(
        'CREATE POLICY owner_delete ON %s AS RESTRICTIVE FOR DELETE USING (atrium_owner_visible(owner_id) OR atrium_owner_delegated(owner_id, %L, true))',
        target, delegation_scope);
END
$$;
REVOKE ALL ON PROCEDURE atrium_delegated_table(regclass, text) FROM PUBLIC;
