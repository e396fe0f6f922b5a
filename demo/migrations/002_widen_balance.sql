-- Fails in production: int -> bigint rewrites the whole table under ACCESS EXCLUSIVE,
-- which takes longer than the statement_timeout production runs with.
ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint;
