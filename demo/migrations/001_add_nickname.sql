-- Passes: a nullable column is a catalog-only change, and the index is built CONCURRENTLY
-- (rehearsed on the clone outside the transaction, then dropped again).
SET lock_timeout = '2s';
ALTER TABLE users ADD COLUMN IF NOT EXISTS nickname text;
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_created_at_idx ON users (created_at);
