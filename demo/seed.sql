-- Example application schema for `make demo`, at a volume where costs show.
-- (pgbench's initializer adds pgbench_accounts etc. before this file runs.)
CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    full_name   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    status      text NOT NULL DEFAULT 'new',
    amount      numeric(12, 2) NOT NULL,
    created_at  timestamptz NOT NULL
);

INSERT INTO users (email, full_name, created_at)
SELECT 'user' || g || '@example.com', 'User ' || g, now() - (g || ' minutes')::interval
FROM generate_series(1, 1000000) AS g;

INSERT INTO orders (user_id, status, amount, created_at)
SELECT 1 + (g::bigint * 7919) % 1000000,
       (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4],
       round((g % 10000) / 7.0, 2),
       now() - (g || ' seconds')::interval
FROM generate_series(1, 2000000) AS g;

CREATE INDEX orders_user_id_idx ON orders (user_id);
VACUUM ANALYZE;
