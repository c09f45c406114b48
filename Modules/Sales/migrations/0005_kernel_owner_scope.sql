-- Owner scope is a kernel concept now (migration 0015 of the kernel): the kernel sets
-- app.owner_scope for callers holding sales.records.any on routes declared
-- .owned("sales.records"), and atrium_owner_visible replaces sales_visible.
DROP POLICY owner_scope ON sales_companies;
DROP POLICY owner_scope ON sales_contacts;
DROP POLICY owner_scope ON sales_deals;
DROP POLICY owner_scope ON sales_deal_items;
DROP POLICY owner_scope ON sales_activities;
DROP POLICY owner_scope ON sales_imports;
DROP POLICY owner_insert ON sales_products;
DROP POLICY owner_update ON sales_products;
DROP POLICY owner_delete ON sales_products;
DROP FUNCTION sales_visible(uuid);

CREATE POLICY owner_scope ON sales_companies AS RESTRICTIVE USING (atrium_owner_visible(owner_id)) WITH CHECK (atrium_owner_visible(owner_id));
CREATE POLICY owner_scope ON sales_contacts AS RESTRICTIVE USING (atrium_owner_visible(owner_id)) WITH CHECK (atrium_owner_visible(owner_id));
CREATE POLICY owner_scope ON sales_deals AS RESTRICTIVE USING (atrium_owner_visible(owner_id)) WITH CHECK (atrium_owner_visible(owner_id));
CREATE POLICY owner_scope ON sales_deal_items AS RESTRICTIVE USING (atrium_owner_visible(owner_id)) WITH CHECK (atrium_owner_visible(owner_id));
CREATE POLICY owner_scope ON sales_activities AS RESTRICTIVE USING (atrium_owner_visible(owner_id)) WITH CHECK (atrium_owner_visible(owner_id));
CREATE POLICY owner_scope ON sales_imports AS RESTRICTIVE USING (atrium_owner_visible(owner_id)) WITH CHECK (atrium_owner_visible(owner_id));
-- Products are the tenant's catalog: everyone reads them, owners change their own.
CREATE POLICY owner_insert ON sales_products AS RESTRICTIVE FOR INSERT WITH CHECK (atrium_owner_visible(owner_id));
CREATE POLICY owner_update ON sales_products AS RESTRICTIVE FOR UPDATE USING (atrium_owner_visible(owner_id)) WITH CHECK (atrium_owner_visible(owner_id));
CREATE POLICY owner_delete ON sales_products AS RESTRICTIVE FOR DELETE USING (atrium_owner_visible(owner_id));
