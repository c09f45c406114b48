-- What the synced balances are worth: each owner's valuation asset, and snapshots of
-- their holdings valued at the exchange's prices (one per owner and plan interval).
-- Snapshots keep their values when a connection goes: they name assets, not connections.

CREATE TABLE crypto_settings (
    tenant_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    -- The asset values are told in (USDT, BTC, EUR, ...).
    valuation_asset text NOT NULL DEFAULT 'USDT' CHECK (valuation_asset ~ '^[A-Z0-9]{2,12}$'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, owner_id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CALL atrium_owned_table('crypto_settings');

CREATE TABLE crypto_snapshots (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    -- The start of the plan interval this snapshot stands for: one per owner and slot.
    slot timestamptz NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    valuation_asset text NOT NULL,
    total_value numeric NOT NULL,
    -- Assets held that no market prices in the valuation asset: not counted, never as 0.
    unpriced_assets text[] NOT NULL DEFAULT '{}',
    connections int NOT NULL,
    -- Snapshots do not change: as taken_at, for lists filtered by updated_since.
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT crypto_snapshots_once_per_slot UNIQUE (tenant_id, owner_id, slot),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX crypto_snapshots_owner ON crypto_snapshots (tenant_id, owner_id, taken_at, id);
CREATE INDEX crypto_snapshots_page ON crypto_snapshots (tenant_id, taken_at, id);
CALL atrium_owned_table('crypto_snapshots');

CREATE TABLE crypto_snapshot_lines (
    tenant_id uuid NOT NULL,
    snapshot_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    asset text NOT NULL,
    quantity numeric(38, 18) NOT NULL,
    -- The asset's price in the valuation asset, and the value; null when unpriced.
    price numeric,
    value numeric,
    PRIMARY KEY (tenant_id, snapshot_id, asset),
    FOREIGN KEY (tenant_id, snapshot_id) REFERENCES crypto_snapshots (tenant_id, id) ON DELETE CASCADE
);
CALL atrium_owned_table('crypto_snapshot_lines');
