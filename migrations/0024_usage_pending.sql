-- Usage recorded by a request no longer moves a shared counter row in the request's
-- transaction. A month's counter row is one row per tenant and meter: every metered write
-- of a tenant queued on its row lock until the writer committed, so metered writes ran one
-- at a time per tenant. Now a recorded event also appends a row to `usage_pending` (nothing
-- shared to lock), and `kernel.usage.fold` moves committed pending rows into the
-- counters every minute. Readers use `usage_totals`, counters plus pending, so a read is
-- exact whether or not the fold has run.
SELECT set_config('app.scope', 'platform', true);

-- The idempotency key already identifies an event; the random `id` key cost a B-tree
-- insert at a random page per event and nothing referenced it.
ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey;
ALTER TABLE usage_events DROP COLUMN id;
ALTER TABLE usage_events ADD CONSTRAINT usage_events_pkey PRIMARY KEY USING INDEX usage_events_idempotency;

-- Keyed like every tenant table (tenant first); the identity appends within a tenant.
CREATE TABLE usage_pending (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id bigint GENERATED ALWAYS AS IDENTITY,
    meter text NOT NULL,
    period date NOT NULL,
    quantity bigint NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE usage_pending ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_pending FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_pending
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant());
-- The fold (platform work) adds to any tenant's counters.
ALTER POLICY tenant_isolation ON usage_counters
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());

-- Counters and pending events together: a month's usage per meter, whatever the fold did.
-- security_invoker: read with the reader's row-level security, not the view owner's.
CREATE VIEW usage_totals WITH (security_invoker = true) AS
SELECT tenant_id, meter, period, sum(quantity)::int8 AS quantity, sum(events)::int8 AS events, max(max_quantity)::int8 AS max_quantity
FROM (
    SELECT tenant_id, meter, period, quantity, events, max_quantity FROM usage_counters
    UNION ALL
    SELECT tenant_id, meter, period, quantity, 1, quantity FROM usage_pending
) parts
GROUP BY tenant_id, meter, period;

-- The API-call lease reads what was recorded, pending events included.
CREATE OR REPLACE FUNCTION atrium_lease_api_calls(tenant uuid, month date, quota bigint, most bigint)
    RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    recorded bigint;
    granted_before bigint;
    slice bigint;
BEGIN
    PERFORM set_config('app.tenant_id', tenant::text, true);
    SELECT quantity INTO recorded FROM usage_totals WHERE tenant_id = tenant AND meter = 'kernel.api_calls' AND period = month;
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
