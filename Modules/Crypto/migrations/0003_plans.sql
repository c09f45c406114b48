-- What a tenant's plan decides for its connections: how many it keeps
-- (`crypto.exchanges`) and how often each syncs (`crypto.sync_interval_seconds`), both
-- read from the quotas the serving process publishes from plans.yaml.

-- A connection beyond the plan's count after a downgrade is paused, its data kept; an
-- upgrade resumes it.
ALTER TABLE crypto_connections DROP CONSTRAINT crypto_connections_state_check;
ALTER TABLE crypto_connections ADD CONSTRAINT crypto_connections_state_check
    CHECK (state IN ('active', 'auth_failed', 'paused_plan_limit'));
-- When the last run that read every market's trades started (a full pass runs daily).
ALTER TABLE crypto_connections ADD COLUMN last_full_sync_at timestamptz;

-- What a run spent of the exchange's request weight, and whether it read every market.
ALTER TABLE crypto_sync_runs ADD COLUMN weight int NOT NULL DEFAULT 0;
ALTER TABLE crypto_sync_runs ADD COLUMN full_pass boolean NOT NULL DEFAULT false;

-- Seconds between a connection's syncs on `tenant`'s plan: the plan's
-- `crypto.sync_interval_seconds`, never below 300 (also the value without one).
CREATE FUNCTION crypto_sync_interval(tenant uuid) RETURNS int
LANGUAGE sql STABLE AS $$
    SELECT greatest(300, coalesce((
        SELECT q.value FROM plan_quotas q JOIN tenants t ON t.plan = q.plan
        WHERE t.id = tenant AND q.name = 'crypto.sync_interval_seconds'), 300))::int
$$;

-- Pauses `tenant`'s newest connections beyond its plan's `crypto.exchanges` and resumes
-- paused ones within it (oldest first keep their place; a connection waiting for new
-- credentials keeps its place too). Run in a transaction that sees every owner's rows;
-- returns how many changed.
CREATE FUNCTION crypto_apply_plan_limit(tenant uuid) RETURNS int
LANGUAGE sql AS $$
    WITH quota AS (
        SELECT (SELECT q.value FROM plan_quotas q JOIN tenants t ON t.plan = q.plan
                WHERE t.id = tenant AND q.name = 'crypto.exchanges') AS slots
    ), ranked AS (
        SELECT id, row_number() OVER (ORDER BY created_at, id) AS place FROM crypto_connections WHERE tenant_id = tenant
    ), changed AS (
        UPDATE crypto_connections c
        SET state = CASE WHEN c.state = 'active' THEN 'paused_plan_limit' ELSE 'active' END,
            next_sync_at = CASE WHEN c.state = 'active' THEN c.next_sync_at ELSE now() END,
            updated_at = now()
        FROM ranked r, quota
        WHERE c.tenant_id = tenant AND c.id = r.id
          AND ((c.state = 'active' AND quota.slots IS NOT NULL AND r.place > quota.slots)
            OR (c.state = 'paused_plan_limit' AND (quota.slots IS NULL OR r.place <= quota.slots)))
        RETURNING 1
    )
    SELECT count(*)::int FROM changed
$$;
