-- Metered usage. Events are recorded inside the business transaction that caused them,
-- with an idempotency key unique per tenant forever, so a rolled-back write is never
-- billed and a retried request is billed once. Counters per meter and month are kept in
-- the same transaction for fast reads; `atrium billing reconcile` checks them against
-- the events.
CREATE TABLE usage_events (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    meter text NOT NULL,
    quantity bigint NOT NULL CHECK (quantity >= 0),
    occurred_at timestamptz NOT NULL,
    period date NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX usage_events_idempotency ON usage_events (tenant_id, idempotency_key);
CREATE INDEX usage_events_period ON usage_events (tenant_id, meter, period);
ALTER TABLE usage_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_events
    USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
REVOKE UPDATE, DELETE ON usage_events FROM atrium_app;

CREATE TABLE usage_counters (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    meter text NOT NULL,
    period date NOT NULL,
    quantity bigint NOT NULL DEFAULT 0,
    events bigint NOT NULL DEFAULT 0,
    max_quantity bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, meter, period)
);
ALTER TABLE usage_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_counters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_counters
    USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
