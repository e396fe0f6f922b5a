-- Blocks writes: CREATE INDEX without CONCURRENTLY holds a SHARE lock on orders for the
-- whole build, so every INSERT/UPDATE/DELETE on orders waits behind it.
CREATE INDEX orders_created_at_idx ON orders (created_at);
