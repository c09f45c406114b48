-- A job's attempts are what its kind declares (`JobDefinition.maxAttempts`), not a column
-- default every kind shared: a job enqueued without an explicit number has none until a
-- worker claims it, and the claim records the declared one. Jobs still waiting with the
-- old default take their kind's declaration at their next claim.
ALTER TABLE jobs ALTER COLUMN max_attempts DROP NOT NULL;
ALTER TABLE jobs ALTER COLUMN max_attempts DROP DEFAULT;
UPDATE jobs SET max_attempts = NULL WHERE state = 'pending' AND max_attempts = 5;
