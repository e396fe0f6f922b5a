-- Instant on an idle clone — but run with application traffic and one long-running report
-- query reading orders (--traffic auto --hold-lock public.orders:5), the ALTER waits for its
-- ACCESS EXCLUSIVE lock, the application queues behind it, and production's lock_timeout fires.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS note text;
