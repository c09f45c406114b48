-- Usage recorded by a request no longer writes the event and moves a shared counter row in
-- the request's transaction. The counter is one row per tenant, meter and month: every
-- metered write of a tenant queued on its row lock until the writer committed, so metered
-- writes of a tenant ran one at a time; and the event's three index entries doubled the
-- cost of a small module write. Now the request appends one row to `usage_pending` (keyed
-- by its idempotency key, nothing shared to lock), and `kernel.usage.fold` moves committed
-- pending rows into `usage_events` and the counters every minute, in one transaction.
--
-- Readers use two views, exact whether or not the fold has run: `usage_records`, every
-- event (recorded or pending), and `usage_totals`, the counters plus what is pending. A
-- pending row whose key is already an event (a retry that raced the fold) counts once:
-- both views leave it out, and the fold drops it.
SELECT set_config('app.scope', 'platform', true);

-- The idempotency key already identifies an event; the random `id` key cost a B-tree
-- insert at a random page per event and nothing referenced it.
ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey;
ALTER TABLE usage_events DROP COLUMN id;
ALTER TABLE usage_events ADD CONSTRAINT usage_events_pkey PRIMARY KEY USING INDEX usage_events_idempotency;

CREATE TABLE usage_pending (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    meter text NOT NULL,
    quantity bigint NOT NULL CHECK (quantity >= 0),
    occurred_at timestamptz NOT NULL,
    period date NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, idempotency_key)
);
ALTER TABLE usage_pending ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_pending FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_pending
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant());
-- The fold (platform work) writes any tenant's events and counters.
ALTER POLICY tenant_isolation ON usage_events
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());
ALTER POLICY tenant_isolation ON usage_counters
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());

-- Every event, recorded or pending. security_invoker: read under the reader's row-level
-- security, not the view owner's.
CREATE VIEW usage_records WITH (security_invoker = true) AS
SELECT tenant_id, meter, quantity, occurred_at, period, idempotency_key, properties, recorded_at FROM usage_events
UNION ALL
SELECT p.tenant_id, p.meter, p.quantity, p.occurred_at, p.period, p.idempotency_key, p.properties, p.recorded_at FROM usage_pending p
WHERE NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.tenant_id = p.tenant_id AND e.idempotency_key = p.idempotency_key);

-- A month's usage per meter: the counters plus what is pending.
CREATE VIEW usage_totals WITH (security_invoker = true) AS
SELECT tenant_id, meter, period, sum(quantity)::int8 AS quantity, sum(events)::int8 AS events, max(max_quantity)::int8 AS max_quantity
FROM (
    SELECT tenant_id, meter, period, quantity, events, max_quantity FROM usage_counters
    UNION ALL
    SELECT p.tenant_id, p.meter, p.period, p.quantity, 1, p.quantity FROM usage_pending p
    WHERE NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.tenant_id = p.tenant_id AND e.idempotency_key = p.idempotency_key)
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
