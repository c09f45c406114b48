-- The portfolio module: users' portfolios and their ledgers, and the tenant's market
-- data (instruments, daily closes, FX rates, splits).
--
-- A user's rows are theirs (owner_id); a manager assigning an advisor to a client is a
-- kernel delegation in scope 'portfolio.records' (owner_delegations), which the owner
-- policies of atrium_delegated_table admit for reading only: an advisor reads their
-- clients' portfolios and never changes their ledgers.
--
-- Every amount is numeric, never a float. A ledger keeps what was recorded: a split is
-- an event applied when the ledger is read, so entries stay as typed, and undoing a
-- split is deleting it. Trade-date FX is stored on the entry when it is written, so a
-- later correction of a rate never moves a past cost.

CREATE TABLE portfolio_portfolios (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    base_currency text NOT NULL CHECK (base_currency ~ '^[A-Z]{3}$'),
    cost_method text NOT NULL DEFAULT 'fifo' CHECK (cost_method IN ('fifo', 'average')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- The ledger's rows carry their portfolio's owner; this key lets them say so.
    UNIQUE (tenant_id, id, owner_id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX portfolio_portfolios_owner ON portfolio_portfolios (tenant_id, owner_id, updated_at, id);
CREATE INDEX portfolio_portfolios_updated ON portfolio_portfolios (tenant_id, updated_at, id);
CALL atrium_delegated_table('portfolio_portfolios', 'portfolio.records');

-- One row per recorded event of a portfolio. quantity and price for trades, amount for
-- cash (deposit, withdrawal, dividend, fee); fee in the entry's currency; fx_rate turns
-- the entry's currency into the portfolio's base on trade_date (1 when they agree).
CREATE TABLE portfolio_transactions (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    portfolio_id uuid NOT NULL,
    -- Ledger order within a date: entries of one day are booked as they were recorded.
    entry_seq bigint GENERATED ALWAYS AS IDENTITY,
    kind text NOT NULL CHECK (kind IN ('buy', 'sell', 'dividend', 'fee', 'deposit', 'withdrawal')),
    trade_date date NOT NULL,
    symbol text CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.:_-]{0,31}$'),
    quantity numeric CHECK (quantity > 0),
    price numeric CHECK (price >= 0),
    amount numeric CHECK (amount >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    fee numeric NOT NULL DEFAULT 0 CHECK (fee >= 0),
    fx_rate numeric NOT NULL DEFAULT 1 CHECK (fx_rate > 0),
    -- The buys (lots) a sell takes from, in order; empty: the portfolio's cost method.
    lots uuid[] NOT NULL DEFAULT '{}',
    external_id text CHECK (length(external_id) BETWEEN 1 AND 200),
    notes text NOT NULL DEFAULT '' CHECK (length(notes) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, portfolio_id, owner_id) REFERENCES portfolio_portfolios (tenant_id, id, owner_id)
        ON DELETE CASCADE ON UPDATE CASCADE,
    CHECK (CASE WHEN kind IN ('buy', 'sell') THEN symbol IS NOT NULL AND quantity IS NOT NULL AND price IS NOT NULL AND amount IS NULL
                WHEN kind = 'dividend' THEN symbol IS NOT NULL AND amount IS NOT NULL AND quantity IS NULL AND price IS NULL
                ELSE amount IS NOT NULL AND quantity IS NULL AND price IS NULL END),
    CHECK (kind = 'sell' OR lots = '{}')
);
CREATE INDEX portfolio_transactions_ledger ON portfolio_transactions (tenant_id, portfolio_id, trade_date, entry_seq);
CREATE INDEX portfolio_transactions_page ON portfolio_transactions (tenant_id, portfolio_id, created_at, id);
ALTER TABLE portfolio_transactions ADD CONSTRAINT portfolio_transactions_external UNIQUE (tenant_id, portfolio_id, external_id);
COMMENT ON CONSTRAINT portfolio_transactions_external ON portfolio_transactions IS
    'problem: 409 duplicate_external_id external_id is already used by another entry of this portfolio';
CALL atrium_delegated_table('portfolio_transactions', 'portfolio.records');

-- A price its owner typed for one portfolio: it wins over the market's close there.
CREATE TABLE portfolio_manual_prices (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    portfolio_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    symbol text NOT NULL CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.:_-]{0,31}$'),
    on_date date NOT NULL,
    price numeric NOT NULL CHECK (price >= 0),
    PRIMARY KEY (tenant_id, portfolio_id, symbol, on_date),
    FOREIGN KEY (tenant_id, portfolio_id, owner_id) REFERENCES portfolio_portfolios (tenant_id, id, owner_id)
        ON DELETE CASCADE ON UPDATE CASCADE
);
CALL atrium_delegated_table('portfolio_manual_prices', 'portfolio.records');

-- The tenant's market data: everyone with the module reads it; portfolio.market.write
-- changes it.
CREATE TABLE portfolio_instruments (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The list's cursor; the symbol is the key everything else uses.
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    symbol text NOT NULL CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.:_-]{0,31}$'),
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 300),
    sector text NOT NULL DEFAULT '' CHECK (length(sector) <= 100),
    asset_type text NOT NULL DEFAULT 'stock' CHECK (asset_type IN ('stock', 'etf', 'fund', 'bond', 'crypto', 'cash', 'other')),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    market_cap numeric CHECK (market_cap >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, symbol),
    UNIQUE (tenant_id, id)
);
CREATE INDEX portfolio_instruments_updated ON portfolio_instruments (tenant_id, updated_at, id);
CALL atrium_tenant_table('portfolio_instruments');

-- Daily closes as traded, in the instrument's currency, never split-adjusted.
CREATE TABLE portfolio_prices (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    symbol text NOT NULL,
    on_date date NOT NULL,
    close numeric NOT NULL CHECK (close >= 0),
    source text NOT NULL DEFAULT 'api' CHECK (source ~ '^[a-z][a-z0-9_-]{0,39}$'),
    PRIMARY KEY (tenant_id, symbol, on_date),
    CONSTRAINT portfolio_prices_instrument FOREIGN KEY (tenant_id, symbol) REFERENCES portfolio_instruments (tenant_id, symbol) ON DELETE CASCADE
);
CALL atrium_tenant_table('portfolio_prices');

-- One unit of base is worth rate units of quote on on_date.
CREATE TABLE portfolio_fx_rates (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    base text NOT NULL CHECK (base ~ '^[A-Z]{3}$'),
    quote text NOT NULL CHECK (quote ~ '^[A-Z]{3}$'),
    on_date date NOT NULL,
    rate numeric NOT NULL CHECK (rate > 0),
    PRIMARY KEY (tenant_id, base, quote, on_date),
    CHECK (base <> quote)
);
CALL atrium_tenant_table('portfolio_fx_rates');

-- Splits: ratio new units per old one, from effective_date on (2 for 2-for-1, 0.1 for
-- 1-for-10).
CREATE TABLE portfolio_corporate_actions (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    symbol text NOT NULL,
    kind text NOT NULL DEFAULT 'split' CHECK (kind = 'split'),
    effective_date date NOT NULL,
    ratio numeric NOT NULL CHECK (ratio > 0 AND ratio <> 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT portfolio_corporate_actions_once UNIQUE (tenant_id, symbol, kind, effective_date),
    CONSTRAINT portfolio_corporate_actions_instrument FOREIGN KEY (tenant_id, symbol) REFERENCES portfolio_instruments (tenant_id, symbol) ON DELETE CASCADE
);
COMMENT ON CONSTRAINT portfolio_corporate_actions_once ON portfolio_corporate_actions IS
    'problem: 409 duplicate_action effective_date already has a split of this instrument';
COMMENT ON CONSTRAINT portfolio_corporate_actions_instrument ON portfolio_corporate_actions IS
    'problem: 422 unknown_instrument symbol is not an instrument of this tenant';
COMMENT ON CONSTRAINT portfolio_prices_instrument ON portfolio_prices IS
    'problem: 422 unknown_instrument symbol is not an instrument of this tenant';
CREATE INDEX portfolio_corporate_actions_page ON portfolio_corporate_actions (tenant_id, created_at, id);
CALL atrium_tenant_table('portfolio_corporate_actions');
