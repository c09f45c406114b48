-- Key material the kernel keeps in the database, sealed under the master key, so a
-- master-key rotation re-seals it instead of invalidating what it keys. The one entry
-- today: 'hashing-root', from which the keys that hash API keys and refresh tokens and
-- sign links are derived (written by the first `atrium keys rotate-master`).
CREATE TABLE kernel_keys (
    name text PRIMARY KEY,
    sealed bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
