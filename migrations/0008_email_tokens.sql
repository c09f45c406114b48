-- Single-use tokens sent by email: address verification, password reset, invitation.
-- Stored only as keyed hashes (HMAC with a key derived from the master key).
CREATE TABLE email_tokens (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    purpose text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'invitation')),
    token_hash bytea NOT NULL,
    user_id uuid,
    email text NOT NULL,
    role text,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX email_tokens_hash ON email_tokens (tenant_id, token_hash);
ALTER TABLE email_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON email_tokens
    USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant());
