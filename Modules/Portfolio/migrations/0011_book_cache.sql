-- A booked ledger kept for the next holdings read. Booking a ledger of 10,000 entries
-- costs ~80 ms of window passes in PostgreSQL whatever is cached; a dashboard asks for the
-- same holdings again and again between two changes of the ledger. A holdings read keeps
-- what it booked (positions, cash, the ledger's digest) under the portfolio's ledger
-- version and the inputs besides the ledger it depends on (method, date, splits); the
-- next read with the same version and inputs takes it instead of booking again.
--
-- The version is moved by every statement that writes a portfolio's entries (a trigger:
-- no write path can forget it), in the writer's transaction, so a cached book is never
-- read against a ledger it was not made from.
CREATE TABLE portfolio_ledger_versions (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    portfolio_id uuid NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (tenant_id, portfolio_id)
);
CALL atrium_tenant_table('portfolio_ledger_versions');

CREATE FUNCTION portfolio_bump_ledger_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- Only the transaction's own tenant: platform work (a tenant deleted, its entries
    -- going with it) leaves no version behind.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO portfolio_ledger_versions (tenant_id, portfolio_id, version)
        SELECT DISTINCT tenant_id, portfolio_id, 1 FROM changed_after WHERE tenant_id = atrium_current_tenant()
        ON CONFLICT (tenant_id, portfolio_id) DO UPDATE SET version = portfolio_ledger_versions.version + 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO portfolio_ledger_versions (tenant_id, portfolio_id, version)
        SELECT DISTINCT tenant_id, portfolio_id, 1 FROM changed_before WHERE tenant_id = atrium_current_tenant()
        ON CONFLICT (tenant_id, portfolio_id) DO UPDATE SET version = portfolio_ledger_versions.version + 1;
    ELSE
        INSERT INTO portfolio_ledger_versions (tenant_id, portfolio_id, version)
        SELECT tenant_id, portfolio_id, 1 FROM changed_after WHERE tenant_id = atrium_current_tenant()
        UNION SELECT tenant_id, portfolio_id, 1 FROM changed_before WHERE tenant_id = atrium_current_tenant()
        ON CONFLICT (tenant_id, portfolio_id) DO UPDATE SET version = portfolio_ledger_versions.version + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER portfolio_ledger_inserted AFTER INSERT ON portfolio_transactions
    REFERENCING NEW TABLE AS changed_after FOR EACH STATEMENT EXECUTE FUNCTION portfolio_bump_ledger_version();
CREATE TRIGGER portfolio_ledger_updated AFTER UPDATE ON portfolio_transactions
    REFERENCING OLD TABLE AS changed_before NEW TABLE AS changed_after FOR EACH STATEMENT EXECUTE FUNCTION portfolio_bump_ledger_version();
CREATE TRIGGER portfolio_ledger_deleted AFTER DELETE ON portfolio_transactions
    REFERENCING OLD TABLE AS changed_before FOR EACH STATEMENT EXECUTE FUNCTION portfolio_bump_ledger_version();

-- One book per portfolio and date: a read with a newer version or other inputs replaces
-- it. The nightly valuation job drops books not made for a week.
CREATE TABLE portfolio_book_cache (
    tenant_id uuid NOT NULL,
    portfolio_id uuid NOT NULL,
    as_of date NOT NULL,
    ledger_version bigint NOT NULL,
    inputs text NOT NULL,
    book jsonb NOT NULL,
    ledger_digest text NOT NULL,
    cached_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, portfolio_id, as_of),
    FOREIGN KEY (tenant_id, portfolio_id) REFERENCES portfolio_portfolios (tenant_id, id) ON DELETE CASCADE
);
CALL atrium_tenant_table('portfolio_book_cache');
