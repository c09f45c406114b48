-- A request's usage record is now a bare append: `usage_pending` keeps no key and no
-- foreign key. Measured over HTTP (bench/metering.sh, the same owned-row create with and
-- without a record), the unique key on (tenant_id, idempotency_key), a B-tree insert at a
-- random page per event, and the foreign key to `tenants`, a second share lock on the
-- tenant's row (which every concurrent write of the tenant holds), cost the write about
-- a sixth of its throughput; the bare append costs a few percent.
--
-- Idempotency moves from the insert to the readers, where it already was for keys that
-- reached `usage_events`: the fold moves the first-recorded row of each key and drops
-- the others, and `usage_records` and `usage_totals` count a key once. A tenant's
-- pending rows go with it by trigger, as its other rows go by cascade.
SELECT set_config('app.scope', 'platform', true);

ALTER TABLE usage_pending DROP CONSTRAINT usage_pending_pkey;
ALTER TABLE usage_pending DROP CONSTRAINT usage_pending_tenant_id_fkey;
-- Read by SchemaVerifier: a tenant table with no key, removed with its tenant by the
-- trigger `usage_pending_removed_with_tenant`.
COMMENT ON TABLE usage_pending IS 'atrium:append-only';

-- Runs as the migration owner: whoever deletes a tenant need not see or delete usage
-- itself. The platform scope lets the delete past row-level security; the caller's
-- scope is put back before the trigger returns.
CREATE FUNCTION atrium_remove_pending_usage() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    scope text := coalesce(current_setting('app.scope', true), '');
BEGIN
    PERFORM set_config('app.scope', 'platform', true);
    DELETE FROM usage_pending WHERE tenant_id = OLD.id;
    PERFORM set_config('app.scope', scope, true);
    RETURN OLD;
END
$$;
CREATE TRIGGER usage_pending_removed_with_tenant AFTER DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION atrium_remove_pending_usage();

-- The first-recorded pending row of each key that is not an event already.
CREATE VIEW usage_pending_first WITH (security_invoker = true) AS
SELECT DISTINCT ON (p.tenant_id, p.idempotency_key)
       p.tenant_id, p.meter, p.quantity, p.occurred_at, p.period, p.idempotency_key, p.properties, p.recorded_at
FROM usage_pending p
WHERE NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.tenant_id = p.tenant_id AND e.idempotency_key = p.idempotency_key)
ORDER BY p.tenant_id, p.idempotency_key, p.recorded_at;

CREATE OR REPLACE VIEW usage_records WITH (security_invoker = true) AS
SELECT tenant_id, meter, quantity, occurred_at, period, idempotency_key, properties, recorded_at FROM usage_events
UNION ALL
SELECT tenant_id, meter, quantity, occurred_at, period, idempotency_key, properties, recorded_at FROM usage_pending_first;

CREATE OR REPLACE VIEW usage_totals WITH (security_invoker = true) AS
SELECT tenant_id, meter, period, sum(quantity)::int8 AS quantity, sum(events)::int8 AS events, max(max_quantity)::int8 AS max_quantity
FROM (
    SELECT tenant_id, meter, period, quantity, events, max_quantity FROM usage_counters
    UNION ALL
    SELECT tenant_id, meter, period, quantity, 1, quantity FROM usage_pending_first
) parts
GROUP BY tenant_id, meter, period;
