-- An import may land every row in one record its path names (ImportParent: a broker's
-- file of one portfolio's entries). The parent is checked when the import is created and
-- kept here, so the job lands in it and the import is listed under it only.
ALTER TABLE imports ADD COLUMN parent_id uuid;
CREATE INDEX imports_parent ON imports (tenant_id, parent_id, created_at) WHERE parent_id IS NOT NULL;
