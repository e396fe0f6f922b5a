"""The one "user schemas" filter (pgparity.pg.schemas) against a real catalog."""

from __future__ import annotations

from fix_pg import PgDatabase
from pgparity.pg.schemas import user_schema


def test_the_application_schemas_and_nothing_of_postgres_own(pg_db: PgDatabase) -> None:
    with pg_db.connect() as conn:
        conn.execute('CREATE SCHEMA app; CREATE SCHEMA "Odd name"; CREATE SCHEMA "information"')
        conn.execute("CREATE TABLE app.t (id int, body text)")  # a TOAST table in pg_toast
        conn.execute("CREATE TEMP TABLE scratch (body text)")  # pg_temp_N and pg_toast_temp_N
        names = {
            str(row[0])
            for row in conn.execute(
                f"SELECT nspname FROM pg_namespace n WHERE {user_schema('n.nspname')}"
            )
        }
        every = {str(row[0]) for row in conn.execute("SELECT nspname FROM pg_namespace")}
    assert names == {"public", "app", "Odd name", "information"}
    assert {"pg_catalog", "pg_toast", "information_schema"} <= every - names
    assert any(name.startswith("pg_temp_") for name in every - names)
    assert any(name.startswith("pg_toast_temp_") for name in every - names)
