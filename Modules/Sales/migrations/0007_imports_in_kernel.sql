-- Imports are a kernel facility now (kernel migration 0018): Sales' imports, with their
-- rejected rows, move to the kernel's tables; files of imports that had not finished
-- move too, so a queued import still runs. Then Sales' own tables go. The copy spans
-- every tenant, so row-level security is lifted for it (the owner role, which runs
-- migrations, bypasses it only on tables not FORCEd) and restored after.
ALTER TABLE sales_imports NO FORCE ROW LEVEL SECURITY;
ALTER TABLE sales_import_chunks NO FORCE ROW LEVEL SECURITY;
ALTER TABLE sales_import_errors NO FORCE ROW LEVEL SECURITY;
ALTER TABLE imports NO FORCE ROW LEVEL SECURITY;
ALTER TABLE import_chunks NO FORCE ROW LEVEL SECURITY;
ALTER TABLE import_errors NO FORCE ROW LEVEL SECURITY;
INSERT INTO imports (tenant_id, id, owner_id, module, entity, format, mode, error_policy, mapping, sees_all, state, bytes,
                     rows_read, rows_written, rows_unchanged, rows_rejected, failure, created_at, finished_at)
SELECT tenant_id, id, owner_id, 'sales', entity, format, mode, error_policy, mapping, sees_all, state, bytes,
       rows_read, rows_written, rows_unchanged, rows_rejected, failure, created_at, finished_at
FROM sales_imports;
INSERT INTO import_chunks (tenant_id, import_id, position, data)
SELECT tenant_id, import_id, position, data FROM sales_import_chunks;
INSERT INTO import_errors (tenant_id, import_id, line, reason)
SELECT tenant_id, import_id, line, reason FROM sales_import_errors;
ALTER TABLE imports FORCE ROW LEVEL SECURITY;
ALTER TABLE import_chunks FORCE ROW LEVEL SECURITY;
ALTER TABLE import_errors FORCE ROW LEVEL SECURITY;
DROP TABLE sales_import_errors;
DROP TABLE sales_import_chunks;
DROP TABLE sales_imports;
