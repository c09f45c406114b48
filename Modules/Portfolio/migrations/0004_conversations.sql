-- Chat: an investor's conversations and their messages, both sides stored, unbilled.
-- Each answer names the responder that made it (rules/1, or an outside model).
CREATE TABLE portfolio_conversations (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL,
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    portfolio_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, id, owner_id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, portfolio_id, owner_id) REFERENCES portfolio_portfolios (tenant_id, id, owner_id)
        ON DELETE SET NULL (portfolio_id) ON UPDATE CASCADE
);
CREATE INDEX portfolio_conversations_owner ON portfolio_conversations (tenant_id, owner_id, updated_at, id);
CREATE INDEX portfolio_conversations_page ON portfolio_conversations (tenant_id, updated_at, id);
CALL atrium_delegated_table('portfolio_conversations', 'portfolio.records');

CREATE TABLE portfolio_messages (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    role text NOT NULL CHECK (role IN ('user', 'assistant')),
    content text NOT NULL CHECK (length(content) BETWEEN 1 AND 20000),
    -- The responder that wrote an assistant message; NULL for the user's.
    responder text CHECK ((role = 'assistant') = (responder IS NOT NULL)),
    -- Each message its own instant, so a question sorts before its answer.
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id, owner_id) REFERENCES portfolio_conversations (tenant_id, id, owner_id) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX portfolio_messages_conversation ON portfolio_messages (tenant_id, conversation_id, created_at, id);
CALL atrium_delegated_table('portfolio_messages', 'portfolio.records');
