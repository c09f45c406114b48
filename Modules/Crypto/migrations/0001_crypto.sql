-- Crypto exchange connections with their API keys encrypted at rest, per tenant.
--
-- Envelope: each tenant has a random 256-bit data key, kept wrapped by the kernel's
-- sealer (the module's key-encryption key, derived from the master key; `kek_id` names
-- it, so `atrium keys rotate-master` can re-wrap it). Each secret is sealed with
-- AES-256-GCM under the tenant's data key, its associated data naming tenant,
-- connection and field: copied to another row, tenant or column it does not open.
-- Rows name the data-key version they were sealed under, so a rotation adds a version
-- and re-seals in batches while syncs and creates go on.
CREATE TABLE crypto_data_keys (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version int NOT NULL CHECK (version > 0),
    kek_id text NOT NULL CHECK (kek_id ~ '^[0-9a-f]{16}$'),
    wrapped bytea NOT NULL,
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);
-- One active data key per tenant: new secrets are sealed under it.
CREATE UNIQUE INDEX crypto_data_keys_active ON crypto_data_keys (tenant_id) WHERE state = 'active';
CALL atrium_tenant_table('crypto_data_keys');

CREATE TABLE crypto_connections (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    owner_id uuid NOT NULL,
    exchange text NOT NULL CHECK (exchange IN ('binance')),
    label text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    api_key_sealed bytea NOT NULL,
    api_secret_sealed bytea NOT NULL,
    key_version int NOT NULL,
    -- SHA-256 (hex) of the API key: finds the same key connected twice; never the key.
    key_fingerprint text NOT NULL CHECK (key_fingerprint ~ '^[0-9a-f]{64}$'),
    key_last4 text NOT NULL CHECK (length(key_last4) <= 4),
    -- What the exchange said the key may do when it was connected (apiRestrictions).
    permissions jsonb NOT NULL DEFAULT '{}',
    -- Markets to sync beyond those of the assets held or traded (BTCUSDT, ...).
    markets text[] NOT NULL DEFAULT '{}',
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'auth_failed')),
    last_error text,
    next_sync_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT crypto_connections_key_once UNIQUE (tenant_id, exchange, key_fingerprint),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, key_version) REFERENCES crypto_data_keys (tenant_id, version)
);
COMMENT ON CONSTRAINT crypto_connections_key_once ON crypto_connections IS
    'problem: 409 connection_exists api_key is already connected in this tenant';
CREATE INDEX crypto_connections_owner ON crypto_connections (tenant_id, owner_id, created_at, id);
CREATE INDEX crypto_connections_page ON crypto_connections (tenant_id, created_at, id);
CALL atrium_owned_table('crypto_connections');
