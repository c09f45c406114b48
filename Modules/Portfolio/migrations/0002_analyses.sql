-- Analyses: what the advisor found in a portfolio (or in holdings sent inline, the
-- stock consultant's mode) on a date, and the advice items it made. Each analysis is
-- billed once (portfolio.analysis) and its advice by count (portfolio.advice), in the
-- transaction that writes it, keyed by its id.
--
-- An analysis belongs to the portfolio's owner. An advisor assigned to the owner is
-- delegated two scopes: 'portfolio.records' to read (never write) the ledger, and
-- 'portfolio.analyses' to write analyses for the client, which the client then reads.
CREATE TABLE portfolio_analyses (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    -- NULL for holdings sent inline.
    portfolio_id uuid,
    as_of date NOT NULL,
    -- The advisor and version that made it (rules/1), and a hash of every input it read:
    -- the same inputs give the same hash and the same advice.
    advisor text NOT NULL CHECK (advisor ~ '^[a-z0-9_-]+/[0-9]+$'),
    inputs_hash text NOT NULL CHECK (inputs_hash ~ '^[0-9a-f]{64}$'),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    value numeric NOT NULL,
    summary jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, portfolio_id, owner_id) REFERENCES portfolio_portfolios (tenant_id, id, owner_id)
        ON DELETE SET NULL (portfolio_id) ON UPDATE CASCADE
);
CREATE INDEX portfolio_analyses_owner ON portfolio_analyses (tenant_id, owner_id, created_at, id);
CREATE INDEX portfolio_analyses_page ON portfolio_analyses (tenant_id, created_at, id);
CREATE INDEX portfolio_analyses_portfolio ON portfolio_analyses (tenant_id, portfolio_id, created_at);
CALL atrium_delegated_table('portfolio_analyses', 'portfolio.analyses');

CREATE TABLE portfolio_advice (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    analysis_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    position int NOT NULL CHECK (position >= 0),
    code text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{0,63}$'),
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    text text NOT NULL CHECK (length(text) <= 2000),
    figures jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, analysis_id, position),
    FOREIGN KEY (tenant_id, analysis_id) REFERENCES portfolio_analyses (tenant_id, id) ON DELETE CASCADE
);
CALL atrium_delegated_table('portfolio_advice', 'portfolio.analyses');
