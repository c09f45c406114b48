-- Count limits: a plan quota on how many rows of a kind a tenant keeps (crypto.exchanges,
-- beauty.staff), as `seats` is on users. A create calls atrium_count_slot in its own
-- transaction before it inserts: the call takes a per-tenant, per-quota advisory lock
-- held to the transaction's end, so two concurrent creates cannot both take the last
-- slot (the second counts after the first has committed), and answers the plan's limit
-- (NULL: none) and the rows counted. Every owner's rows count against the tenant's plan,
-- whoever asks, so the owner scope is opened for the count alone.
CREATE FUNCTION atrium_count_slot(quota text, counted regclass)
    RETURNS TABLE (quota_limit bigint, used bigint) LANGUAGE plpgsql AS $$
DECLARE
    tenant uuid := atrium_current_tenant();
    scope text := current_setting('app.owner_scope', true);
BEGIN
    SELECT q.value INTO quota_limit FROM plan_quotas q JOIN tenants t ON t.plan = q.plan
    WHERE t.id = tenant AND q.name = quota;
    IF quota_limit IS NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('atrium:count:' || tenant::text || ':' || quota, 0));
    PERFORM set_config('app.owner_scope', 'any', true);
    EXECUTE format('SELECT count(*) FROM %s', counted) INTO used;
    PERFORM set_config('app.owner_scope', coalesce(scope, ''), true);
    RETURN NEXT;
END $$;
