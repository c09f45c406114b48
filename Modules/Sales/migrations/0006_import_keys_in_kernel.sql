-- An import's Idempotency-Key is kept by the kernel (idempotency_keys, keyed on the
-- import's settings) like every other create's; Sales' own column and index go.
DROP INDEX sales_imports_idempotency;
ALTER TABLE sales_imports DROP COLUMN idempotency_key;
