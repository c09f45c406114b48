-- The monthly API-call quota, shared by every running server without a row write per
-- request: a server leases a slice of the month's allowance (one statement, its own
-- transaction), admits calls from it in memory, and gives back what it did not use when
-- it stops. `granted` is the month's allowance handed out so far; it never passes the
-- quota, so the servers together never admit more than the quota. A server killed with
-- -9 takes its unused slice with it: the tenant is then refused up to one slice early.
CREATE TABLE api_call_allowances (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period date NOT NULL,
    granted bigint NOT NULL CHECK (granted >= 0),
    PRIMARY KEY (tenant_id, period)
);
ALTER TABLE api_call_allowances ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_call_allowances FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_call_allowances
    USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());

-- Leases up to `most` calls of the tenant's month under `quota`; returns how many were
-- granted (0: the month's quota is handed out). Slices shrink as the month's allowance
-- runs low (a sixteenth of what is left), so the allowance a server holds unused, and
-- another server cannot have, stays small near the quota. The recorded counter is a floor
-- for what is granted: calls counted while the plan had no quota (not leased) still use
-- up the month. Runs in a transaction of its own: a lease must not roll back with a
-- request that failed after admitting its call.
CREATE FUNCTION atrium_lease_api_calls(tenant uuid, month date, quota bigint, most bigint)
    RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    recorded bigint;
    granted_before bigint;
    slice bigint;
BEGIN
    PERFORM set_config('app.tenant_id', tenant::text, true);
    SELECT quantity INTO recorded FROM usage_counters WHERE tenant_id = tenant AND meter = 'kernel.api_calls' AND period = month;
    INSERT INTO api_call_allowances (tenant_id, period, granted) VALUES (tenant, month, 0) ON CONFLICT DO NOTHING;
    SELECT granted INTO granted_before FROM api_call_allowances WHERE tenant_id = tenant AND period = month FOR UPDATE;
    granted_before := greatest(granted_before, coalesce(recorded, 0));
    slice := least(most, quota - granted_before, greatest(1, (quota - granted_before) / 16));
    IF slice <= 0 THEN
        RETURN 0;
    END IF;
    UPDATE api_call_allowances SET granted = granted_before + slice WHERE tenant_id = tenant AND period = month;
    RETURN slice;
END
$$;
