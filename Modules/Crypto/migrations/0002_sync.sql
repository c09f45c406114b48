-- What a sync brings from the exchange: balances, trades by market, and where each
-- market's trades were read up to. A page of trades lands with its cursor in one
-- transaction, so retries, re-runs and a killed worker neither skip nor repeat a trade.
-- Every row belongs to its connection (and goes with it) and to its owner.

CREATE TABLE crypto_trades (
    tenant_id uuid NOT NULL,
    connection_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    symbol text NOT NULL,
    -- The exchange's trade id: unique per market.
    trade_id bigint NOT NULL,
    order_id bigint NOT NULL,
    price numeric(38, 18) NOT NULL,
    quantity numeric(38, 18) NOT NULL,
    quote_quantity numeric(38, 18) NOT NULL,
    commission numeric(38, 18) NOT NULL,
    commission_asset text NOT NULL,
    traded_at timestamptz NOT NULL,
    is_buyer boolean NOT NULL,
    is_maker boolean NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, symbol, trade_id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES crypto_connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX crypto_trades_time ON crypto_trades (tenant_id, owner_id, traded_at, connection_id, symbol, trade_id);
CALL atrium_owned_table('crypto_trades');

-- Per market: the id the next page starts from (Binance's fromId is inclusive).
CREATE TABLE crypto_sync_cursors (
    tenant_id uuid NOT NULL,
    connection_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    symbol text NOT NULL,
    next_trade_id bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connection_id, symbol),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES crypto_connections (tenant_id, id) ON DELETE CASCADE
);
CALL atrium_owned_table('crypto_sync_cursors');

CREATE TABLE crypto_balances (
    tenant_id uuid NOT NULL,
    connection_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    asset text NOT NULL,
    free numeric(38, 18) NOT NULL,
    locked numeric(38, 18) NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connection_id, asset),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES crypto_connections (tenant_id, id) ON DELETE CASCADE
);
CALL atrium_owned_table('crypto_balances');

-- One row per sync run: what it read and wrote, and how it ended.
CREATE TABLE crypto_sync_runs (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    connection_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'succeeded', 'auth_failed', 'exchange_unavailable', 'clock_skew', 'bad_exchange_response')),
    pages int NOT NULL DEFAULT 0,
    trades_new int NOT NULL DEFAULT 0,
    trades_seen int NOT NULL DEFAULT 0,
    error text,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES crypto_connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX crypto_sync_runs_connection ON crypto_sync_runs (tenant_id, connection_id, started_at, id);
CALL atrium_owned_table('crypto_sync_runs');
