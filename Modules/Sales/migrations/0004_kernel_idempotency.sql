-- Idempotency-Key is a kernel convention now (idempotency_keys); Sales' own table goes.
-- Keys stored here are replayed for 24 hours at most, so dropping them loses at most a
-- day of replays.
DROP TABLE sales_idempotency;
