-- The sales module: companies, contacts, deals, products, deal line items and
-- activities, every row owned by a user of the tenant.
--
-- Two policies guard every table. tenant_isolation (permissive) keeps each tenant to
-- its own rows, as everywhere in Atrium. owner_scope (restrictive, so it applies on
-- top) shows a caller only the rows it owns unless the transaction says the caller may
-- see any record: the module sets app.sales_scope = 'any' only for principals holding
-- sales.records.any, and the kernel sets app.principal_id for the caller. A handler that
-- forgets an owner filter still cannot show a rep another rep's rows; a transaction
-- that sets neither sees nothing.
CREATE FUNCTION sales_visible(owner uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('app.sales_scope', true), '') = 'any'
              OR owner = nullif(current_setting('app.principal_id', true), '')::uuid $$;

CREATE TABLE sales_companies (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
    domain text CHECK (domain ~ '^[a-z0-9.-]+\.[a-z]{2,}$'),
    external_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX sales_companies_domain ON sales_companies (tenant_id, domain);
CREATE UNIQUE INDEX sales_companies_external ON sales_companies (tenant_id, external_id);
CREATE INDEX sales_companies_owner ON sales_companies (tenant_id, owner_id);
CREATE INDEX sales_companies_name ON sales_companies (tenant_id, lower(name));

CREATE TABLE sales_contacts (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    first_name text NOT NULL DEFAULT '' CHECK (length(first_name) <= 200),
    last_name text NOT NULL DEFAULT '' CHECK (length(last_name) <= 200),
    -- Stored lowercased: the natural key of imports and unique per tenant.
    email text CHECK (email = lower(email) AND email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    phone text CHECK (length(phone) <= 50),
    company_id uuid,
    tags text[] NOT NULL DEFAULT '{}',
    external_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES sales_companies (tenant_id, id) ON DELETE SET NULL (company_id),
    CHECK (email IS NOT NULL OR first_name <> '' OR last_name <> '')
);
CREATE UNIQUE INDEX sales_contacts_email ON sales_contacts (tenant_id, email);
CREATE UNIQUE INDEX sales_contacts_external ON sales_contacts (tenant_id, external_id);
CREATE INDEX sales_contacts_owner ON sales_contacts (tenant_id, owner_id, updated_at);
CREATE INDEX sales_contacts_updated ON sales_contacts (tenant_id, updated_at, id);
CREATE INDEX sales_contacts_tags ON sales_contacts USING gin (tags);
CREATE INDEX sales_contacts_company ON sales_contacts (tenant_id, company_id);

CREATE TABLE sales_products (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    sku text NOT NULL CHECK (length(sku) BETWEEN 1 AND 100),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
    unit_price bigint NOT NULL CHECK (unit_price >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX sales_products_sku ON sales_products (tenant_id, sku);

CREATE TABLE sales_deals (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    company_id uuid,
    contact_id uuid,
    stage text NOT NULL DEFAULT 'lead' CHECK (stage ~ '^[a-z][a-z0-9_]{0,39}$'),
    amount bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
    currency text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    expected_close date,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    external_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES sales_companies (tenant_id, id) ON DELETE SET NULL (company_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES sales_contacts (tenant_id, id) ON DELETE SET NULL (contact_id)
);
CREATE UNIQUE INDEX sales_deals_external ON sales_deals (tenant_id, external_id);
CREATE INDEX sales_deals_owner ON sales_deals (tenant_id, owner_id, updated_at);
CREATE INDEX sales_deals_stage ON sales_deals (tenant_id, stage, status);

CREATE TABLE sales_deal_items (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    deal_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    product_id uuid NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price bigint NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES sales_deals (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, product_id) REFERENCES sales_products (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX sales_deal_items_deal ON sales_deal_items (tenant_id, deal_id);

CREATE TABLE sales_activities (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('call', 'email', 'meeting', 'note', 'stage_change')),
    subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 500),
    body text NOT NULL DEFAULT '' CHECK (length(body) <= 20000),
    contact_id uuid,
    deal_id uuid,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES sales_contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, deal_id) REFERENCES sales_deals (tenant_id, id) ON DELETE CASCADE,
    CHECK (contact_id IS NOT NULL OR deal_id IS NOT NULL)
);
CREATE INDEX sales_activities_contact ON sales_activities (tenant_id, contact_id, occurred_at);
CREATE INDEX sales_activities_deal ON sales_activities (tenant_id, deal_id, occurred_at);

-- Imports: one row per upload, its file in chunks (so no server disk is needed and any
-- worker can run it), and the rejected rows with their line numbers.
CREATE TABLE sales_imports (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    entity text NOT NULL CHECK (entity IN ('contacts', 'companies', 'products', 'deals')),
    format text NOT NULL CHECK (format IN ('csv', 'ndjson')),
    mode text NOT NULL CHECK (mode IN ('upsert', 'insert')),
    error_policy text NOT NULL CHECK (error_policy IN ('all_or_nothing', 'skip_invalid')),
    mapping jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Whether the importer held sales.records.any when it started the import.
    sees_all boolean NOT NULL DEFAULT false,
    state text NOT NULL DEFAULT 'uploading' CHECK (state IN ('uploading', 'queued', 'running', 'succeeded', 'failed')),
    bytes bigint NOT NULL DEFAULT 0,
    rows_read bigint NOT NULL DEFAULT 0,
    rows_written bigint NOT NULL DEFAULT 0,
    rows_unchanged bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    failure text,
    idempotency_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX sales_imports_idempotency ON sales_imports (tenant_id, idempotency_key);

CREATE TABLE sales_import_chunks (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    import_id uuid NOT NULL,
    position integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (tenant_id, import_id, position),
    FOREIGN KEY (tenant_id, import_id) REFERENCES sales_imports (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE sales_import_errors (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    import_id uuid NOT NULL,
    line bigint NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (tenant_id, import_id, line, reason),
    FOREIGN KEY (tenant_id, import_id) REFERENCES sales_imports (tenant_id, id) ON DELETE CASCADE
);

-- Idempotency-Key on creating requests: the first answer is kept and replayed.
CREATE TABLE sales_idempotency (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key text NOT NULL,
    principal_id uuid NOT NULL,
    request_hash text NOT NULL,
    status integer NOT NULL,
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key, principal_id)
);

-- Every table: forced row-level security, one tenant per transaction.
ALTER TABLE sales_companies ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_companies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_companies USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
ALTER TABLE sales_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_contacts USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
ALTER TABLE sales_products ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_products FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_products USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
ALTER TABLE sales_deals ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_deals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_deals USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
ALTER TABLE sales_deal_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_deal_items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_deal_items USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
ALTER TABLE sales_activities ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_activities FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_activities USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
ALTER TABLE sales_imports ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_imports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_imports USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
ALTER TABLE sales_import_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_import_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_import_chunks USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
ALTER TABLE sales_import_errors ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_import_errors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_import_errors USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
ALTER TABLE sales_idempotency ENABLE ROW LEVEL SECURITY;
ALTER TABLE sales_idempotency FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_idempotency USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());

-- Owned records: the caller's own rows only, unless the module set app.sales_scope = 'any'.
CREATE POLICY owner_scope ON sales_companies AS RESTRICTIVE USING (sales_visible(owner_id)) WITH CHECK (sales_visible(owner_id));
CREATE POLICY owner_scope ON sales_contacts AS RESTRICTIVE USING (sales_visible(owner_id)) WITH CHECK (sales_visible(owner_id));
CREATE POLICY owner_scope ON sales_deals AS RESTRICTIVE USING (sales_visible(owner_id)) WITH CHECK (sales_visible(owner_id));
CREATE POLICY owner_scope ON sales_deal_items AS RESTRICTIVE USING (sales_visible(owner_id)) WITH CHECK (sales_visible(owner_id));
CREATE POLICY owner_scope ON sales_activities AS RESTRICTIVE USING (sales_visible(owner_id)) WITH CHECK (sales_visible(owner_id));
CREATE POLICY owner_scope ON sales_imports AS RESTRICTIVE USING (sales_visible(owner_id)) WITH CHECK (sales_visible(owner_id));

-- Products are the tenant's catalog: everyone in the tenant reads them (deals of every
-- rep refer to them); only their owner, or a manager, changes them.
CREATE POLICY owner_insert ON sales_products AS RESTRICTIVE FOR INSERT WITH CHECK (sales_visible(owner_id));
CREATE POLICY owner_update ON sales_products AS RESTRICTIVE FOR UPDATE USING (sales_visible(owner_id)) WITH CHECK (sales_visible(owner_id));
CREATE POLICY owner_delete ON sales_products AS RESTRICTIVE FOR DELETE USING (sales_visible(owner_id));
