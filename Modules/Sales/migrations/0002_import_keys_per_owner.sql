-- An import's Idempotency-Key belongs to the user who sent it: two users of one tenant
-- may use the same key without seeing (or being refused) each other's import.
DROP INDEX sales_imports_idempotency;
CREATE UNIQUE INDEX sales_imports_idempotency ON sales_imports (tenant_id, owner_id, idempotency_key);
