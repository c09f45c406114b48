-- Subscriptions, invoices, declared meters, webhooks and the shared rate-limit store.
SELECT set_config('app.scope', 'platform', true);

-- Usage is read across tenants by platform work (meter declarations, reconciliation).
ALTER POLICY tenant_isolation ON usage_events
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant());
ALTER POLICY tenant_isolation ON usage_counters
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant());

-- Each tenant has one subscription. Its plan is tenants.plan (read on every request);
-- this row holds the lifecycle. plan_periods records which plan was in force when, so
-- that an invoice prorates the flat fee of every plan a period saw.
CREATE TABLE subscriptions (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
    trial_ends_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(),
    canceled_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subscriptions
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());

CREATE TABLE plan_periods (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    plan text NOT NULL,
    PRIMARY KEY (tenant_id, started_at),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE UNIQUE INDEX plan_periods_open ON plan_periods (tenant_id) WHERE ended_at IS NULL;
ALTER TABLE plan_periods ENABLE ROW LEVEL SECURITY;
ALTER TABLE plan_periods FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON plan_periods
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());

-- The database keeps subscriptions and plan history in step with tenants.plan, however
-- a tenant is created or moved (CLI, tenant files, operator API), in the same
-- transaction. The platform scope is set only for the trigger's own statements.
CREATE FUNCTION atrium_track_plan() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous_scope text := coalesce(current_setting('app.scope', true), '');
BEGIN
    PERFORM set_config('app.scope', 'platform', true);
    IF TG_OP = 'INSERT' THEN
        INSERT INTO subscriptions (tenant_id, started_at) VALUES (NEW.id, now());
        INSERT INTO plan_periods (tenant_id, started_at, plan) VALUES (NEW.id, now(), NEW.plan);
    ELSIF NEW.plan IS DISTINCT FROM OLD.plan THEN
        UPDATE plan_periods SET ended_at = now() WHERE tenant_id = NEW.id AND ended_at IS NULL;
        -- A second change within one transaction replaces the period it opened.
        DELETE FROM plan_periods WHERE tenant_id = NEW.id AND started_at = now();
        INSERT INTO plan_periods (tenant_id, started_at, plan) VALUES (NEW.id, now(), NEW.plan);
    END IF;
    PERFORM set_config('app.scope', previous_scope, true);
    RETURN NEW;
END $$;
CREATE TRIGGER tenants_track_plan AFTER INSERT OR UPDATE OF plan ON tenants
    FOR EACH ROW EXECUTE FUNCTION atrium_track_plan();

INSERT INTO subscriptions (tenant_id, started_at) SELECT id, created_at FROM tenants;
INSERT INTO plan_periods (tenant_id, started_at, plan) SELECT id, created_at, plan FROM tenants;

-- Meters declared by the kernel, the modules and the plan catalog. A meter's
-- aggregation is fixed once events exist for it (the kernel refuses to start otherwise).
CREATE TABLE meters (
    name text PRIMARY KEY,
    aggregation text NOT NULL CHECK (aggregation IN ('count', 'sum', 'max', 'unique_count', 'latest')),
    unit text NOT NULL,
    declared_by text NOT NULL,
    declared_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE meters IS 'atrium:platform';

-- Invoices: one per tenant and month, draft until finalized, then immutable.
CREATE TABLE invoices (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    number text NOT NULL,
    period date NOT NULL CHECK (extract(day FROM period) = 1),
    plan text NOT NULL,
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'finalized', 'paid', 'void')),
    total bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    finalized_at timestamptz,
    paid_at timestamptz,
    voided_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, period),
    UNIQUE (tenant_id, number)
);
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoices
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());
REVOKE DELETE ON invoices FROM atrium_app;

CREATE TABLE invoice_lines (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    invoice_id uuid NOT NULL,
    position integer NOT NULL,
    kind text NOT NULL CHECK (kind IN ('subscription', 'usage', 'adjustment')),
    description text NOT NULL,
    meter text,
    -- Usage lines: the meter's aggregated value billed; adjustments: the change to it.
    quantity bigint,
    amount bigint NOT NULL,
    -- The period a usage or adjustment line bills usage of.
    usage_period date,
    PRIMARY KEY (tenant_id, invoice_id, position),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX invoice_lines_usage ON invoice_lines (tenant_id, usage_period, meter);
ALTER TABLE invoice_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoice_lines FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoice_lines
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());

-- A finalized invoice cannot change: only its status may move on (finalized → paid |
-- void), and its lines are frozen. This holds for every role, the CLI's included.
CREATE FUNCTION atrium_freeze_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'invoices' THEN
        IF OLD.status = 'draft' THEN
            IF NEW.status NOT IN ('draft', 'finalized', 'void') THEN
                RAISE EXCEPTION 'invoice %: a draft is finalized or voided, not %', OLD.number, NEW.status USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END IF;
        IF (NEW.number, NEW.period, NEW.plan, NEW.currency, NEW.total, NEW.created_at, NEW.finalized_at)
            IS DISTINCT FROM (OLD.number, OLD.period, OLD.plan, OLD.currency, OLD.total, OLD.created_at, OLD.finalized_at)
            OR NOT ((OLD.status = 'finalized' AND NEW.status IN ('finalized', 'paid', 'void')) OR NEW.status = OLD.status) THEN
            RAISE EXCEPTION 'invoice % is % and cannot change', OLD.number, OLD.status USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    -- Deleting a tenant or an invoice (owner only) cascades to the lines.
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    IF EXISTS (SELECT 1 FROM invoices i WHERE i.tenant_id = coalesce(OLD.tenant_id, NEW.tenant_id)
               AND i.id = coalesce(OLD.invoice_id, NEW.invoice_id) AND i.status <> 'draft') THEN
        RAISE EXCEPTION 'the lines of a finalized invoice cannot change' USING ERRCODE = 'check_violation';
    END IF;
    RETURN coalesce(NEW, OLD);
END $$;
CREATE TRIGGER invoices_frozen BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION atrium_freeze_invoice();
CREATE TRIGGER invoice_lines_frozen BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION atrium_freeze_invoice();

-- Where a tenant wants its billing events; the signing secret is sealed with the master key.
CREATE TABLE webhook_endpoints (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    url text NOT NULL CHECK (url ~ '^https?://'),
    secret_sealed bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_endpoints
    USING (tenant_id = atrium_current_tenant() OR atrium_platform_scope())
    WITH CHECK (tenant_id = atrium_current_tenant() OR atrium_platform_scope());

-- The rate limiter's state when several servers share limits
-- (ATRIUM_RATE_LIMIT_STORE=postgres): one theoretical arrival time per key and policy.
-- Unlogged: losing it in a crash only forgives recent requests.
CREATE UNLOGGED TABLE rate_limit_state (
    slot text PRIMARY KEY,
    theoretical_arrival float8 NOT NULL
);
COMMENT ON TABLE rate_limit_state IS 'atrium:platform';

-- The plan catalog's quotas, published by the process that loaded tenants/plans.yaml
-- (the file stays the one source), so the database can enforce the ones every path
-- must respect.
CREATE TABLE plan_quotas (
    plan text NOT NULL,
    name text NOT NULL,
    value bigint NOT NULL CHECK (value >= 0),
    PRIMARY KEY (plan, name)
);
COMMENT ON TABLE plan_quotas IS 'atrium:platform';

-- Seats: a plan's `seats` quota caps the tenant's active users, however a user is
-- created or re-enabled (signup, invitation, OIDC, CLI, tenant files). Concurrent
-- creations queue on a per-tenant advisory lock, so two cannot take the last seat.
CREATE FUNCTION atrium_enforce_seats() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seats bigint;
    active bigint;
BEGIN
    IF NEW.status <> 'active' OR (TG_OP = 'UPDATE' AND OLD.status = 'active') THEN
        RETURN NEW;
    END IF;
    SELECT q.value INTO seats FROM plan_quotas q JOIN tenants t ON t.plan = q.plan
    WHERE t.id = NEW.tenant_id AND q.name = 'seats';
    IF seats IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('atrium:seats:' || NEW.tenant_id::text, 0));
    SELECT count(*) INTO active FROM users WHERE tenant_id = NEW.tenant_id AND status = 'active' AND id <> NEW.id;
    IF active >= seats THEN
        RAISE EXCEPTION 'The plan includes % seats and all are taken; disable a user or upgrade the plan.', seats
            USING ERRCODE = 'ATQ01', HINT = 'seat_limit_reached';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_enforce_seats BEFORE INSERT OR UPDATE OF status ON users
    FOR EACH ROW EXECUTE FUNCTION atrium_enforce_seats();
