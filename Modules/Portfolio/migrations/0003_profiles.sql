-- Investor profiles: the answers to the risk survey, the score the scorer made of them
-- (0 to 1), its band, goals, horizon and the return range the band expects, in basis
-- points. One per user; advisors read their clients' (scope portfolio.records).
CREATE TABLE portfolio_profiles (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    owner_id uuid NOT NULL,
    survey_version int NOT NULL CHECK (survey_version > 0),
    answers jsonb NOT NULL,
    scorer text NOT NULL CHECK (scorer ~ '^[a-z0-9_-]+/[0-9]+$'),
    score numeric(3, 2) NOT NULL CHECK (score BETWEEN 0 AND 1),
    band text NOT NULL CHECK (band IN ('conservative', 'moderate', 'aggressive')),
    goals text[] NOT NULL DEFAULT '{}' CHECK (cardinality(goals) <= 10),
    horizon text NOT NULL CHECK (horizon IN ('under_3y', '3_7y', '7_15y', 'over_15y')),
    return_min_bp int NOT NULL,
    return_max_bp int NOT NULL CHECK (return_max_bp >= return_min_bp),
    -- What each answer scored, so the investor sees why.
    points jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, owner_id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CALL atrium_delegated_table('portfolio_profiles', 'portfolio.records');
