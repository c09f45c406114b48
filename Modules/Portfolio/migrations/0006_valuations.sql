-- Daily valuations of each portfolio, computed by the nightly job from the ledger and
-- the market (value at the day's end, money paid in and taken out that day, in the
-- base): the performance report reads five years of them in one indexed range instead
-- of replaying the ledger. A change dated in the past deletes the days from its date, in
-- the same transaction, and the next run computes them again.
CREATE TABLE portfolio_valuations (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    portfolio_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    as_of date NOT NULL,
    value numeric NOT NULL,
    inflow numeric NOT NULL DEFAULT 0,
    outflow numeric NOT NULL DEFAULT 0,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, portfolio_id, as_of),
    FOREIGN KEY (tenant_id, portfolio_id, owner_id) REFERENCES portfolio_portfolios (tenant_id, id, owner_id) ON DELETE CASCADE ON UPDATE CASCADE
);
CALL atrium_delegated_table('portfolio_valuations', 'portfolio.records');
