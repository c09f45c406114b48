-- A rep's list is "my rows, in (updated_at, id) order, after the cursor": with the id
-- in the index the page is read in order and stops at the limit, instead of fetching
-- and sorting every row the rep owns (the list slowed down as a rep's rows grew).
CREATE INDEX sales_companies_owner_page ON sales_companies (tenant_id, owner_id, updated_at, id);
DROP INDEX sales_companies_owner;
CREATE INDEX sales_contacts_owner_page ON sales_contacts (tenant_id, owner_id, updated_at, id);
DROP INDEX sales_contacts_owner;
CREATE INDEX sales_deals_owner_page ON sales_deals (tenant_id, owner_id, updated_at, id);
DROP INDEX sales_deals_owner;
