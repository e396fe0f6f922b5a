"""Durations predicted at production scale (issue 13): validate on a 10 % clone, compare with
the full-size run on the same machine.

The "production" here is a second database of the session cluster with ten times the rows;
pgparity reads its sizes through ``--production-dsn`` (read-only, catalog only). Each
statement's prediction from the small clone (its median run × the model's factor) is compared
with the median of the same statement run at full size. The documented error (README, "Scale
prediction") is a factor of two either way for statements that scale; catalog-only statements
are predicted to take as long as they did.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from fix_pg import PgDatabase, run_pgparity, validate_sql
from pgparity.engine.scale import ProductionSizes
from pgparity.models.report import (
    Growth,
    ProductionSource,
    Rule,
    StatementResult,
    ValidationReport,
    Verdict,
)
from pgparity.pg.sizes import TableSize, read_table_sizes

pytestmark = pytest.mark.pg

FULL_ROWS = 200_000
SMALL_ROWS = FULL_ROWS // 10
# The documented error of the model (README): prediction / full-size measurement within
# [1/2, 2] for a statement that takes at least 100 ms at full size (below that, scheduling on a
# shared machine disturbs a run more than the work does), and the same for the sum of the
# statements that scale.
MAX_ERROR = 2.0
MAX_TOTAL_ERROR = 2.0
SIGNIFICANT_MS = 100.0
REPEAT = 5


def items(rows: int) -> str:
    return (
        "CREATE TABLE items (id bigint PRIMARY KEY, account int NOT NULL, amount numeric NOT NULL,"
        " note text);"
        f"INSERT INTO items SELECT g, (g * 7919) % 50000, g % 1000, 'note ' || g"
        f" FROM generate_series(1, {rows}) g;"
    )


MIGRATION = (
    "ALTER TABLE items ALTER COLUMN account TYPE bigint;\n"  # a rewrite: linear
    "CREATE INDEX items_account ON items (account);\n"  # a sort: n log n
    "ALTER TABLE items ADD CONSTRAINT amount_positive CHECK (amount >= 0);\n"  # a scan: linear
    "ALTER TABLE items ADD COLUMN flag boolean;\n"  # catalog only: constant
)
EXPECTED_GROWTH = [Growth.LINEAR, Growth.N_LOG_N, Growth.LINEAR, Growth.CONSTANT]


def _production(db: PgDatabase) -> ProductionSizes:
    with db.connect() as conn:
        return ProductionSizes(ProductionSource.DSN, read_table_sizes(conn))


def _typical(result: StatementResult) -> float:
    assert result.margins is not None
    assert result.margins.runs is not None
    return result.margins.runs.median_ms


def _validate(db: PgDatabase, tmp_path, production: ProductionSizes | None) -> ValidationReport:
    return validate_sql(
        db,
        MIGRATION,
        tmp_path,
        statement_timeout="60s",
        replica=False,
        check_rerun=False,
        repeat=REPEAT,
        production=production,
    )


def test_a_ten_percent_clone_predicts_the_full_size_run(
    pg_db: PgDatabase, pg_plain_db: PgDatabase, tmp_path
) -> None:
    small, full = pg_db, pg_plain_db
    for db, count in ((small, SMALL_ROWS), (full, FULL_ROWS)):
        db.execute(items(count))
        # Parallel index builds start workers for the large table only; on a shared machine
        # that is noise, and the model knows nothing of workers (README).
        db.execute(f"ALTER DATABASE {db.name} SET max_parallel_maintenance_workers = 0")
        db.execute("VACUUM ANALYZE items")
    predicted = _validate(small, tmp_path, _production(full))
    measured = _validate(full, tmp_path, None)
    assert predicted.verdict is Verdict.VALIDATED, predicted.findings
    rows = []
    for guess, truth, growth in zip(
        predicted.statements, measured.statements, EXPECTED_GROWTH, strict=True
    ):
        assert guess.margins is not None
        prediction = guess.margins.prediction
        assert prediction is not None
        assert prediction.growth is growth, guess.sql
        estimate = _typical(guess) * prediction.factor
        rows.append((guess.index, growth.value, prediction.factor, estimate, _typical(truth)))
    print("\n#  growth     factor  predicted ms  full-size ms  ratio")
    for index, growth_name, factor, estimate, actual in rows:
        print(
            f"{index}  {growth_name:<9} {factor:>6.2f} {estimate:>13.1f} {actual:>13.1f}"
            f"  {estimate / actual:>5.2f}"
        )
    scaling = [row for row in rows if row[1] != Growth.CONSTANT.value]
    assert all(row[2] == 1.0 for row in rows if row not in scaling)
    for index, _, _, estimate, actual in scaling:
        if actual >= SIGNIFICANT_MS:
            assert 1 / MAX_ERROR <= estimate / actual <= MAX_ERROR, (index, estimate, actual)
    total = sum(row[3] for row in scaling) / sum(row[4] for row in scaling)
    assert 1 / MAX_TOTAL_ERROR <= total <= MAX_TOTAL_ERROR, total


def test_catalog_and_key_lookups_do_not_scale_but_a_full_update_does(
    pg_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(items(SMALL_ROWS))
    pg_db.execute("ANALYZE items")
    production = ProductionSizes(
        ProductionSource.FILE, {"public.items": TableSize(bytes=100 * 1024**3, rows=1e9)}
    )
    report = validate_sql(
        pg_db,
        "UPDATE items SET note = 'x' WHERE id = 42;\n"
        "UPDATE items SET amount = amount + 1;\n"
        "ALTER TABLE items RENAME COLUMN note TO remark;\n"
        "CREATE TABLE fresh (id int);\nINSERT INTO fresh SELECT generate_series(1, 1000);\n",
        tmp_path,
        headroom=None,
        production=production,
    )
    growth = [
        s.margins.prediction.growth if s.margins and s.margins.prediction else None
        for s in report.statements
    ]
    assert growth == [
        Growth.CONSTANT,  # one row by key
        Growth.LINEAR,  # every row
        Growth.CONSTANT,  # catalog only
        Growth.CONSTANT,  # a new table: nothing at production to scale
        Growth.CONSTANT,  # rows into the new table only
    ]


def test_a_prediction_past_the_budget_rejects_what_the_clone_passed(
    pg_db: PgDatabase, tmp_path
) -> None:
    """On the clone the UPDATE takes milliseconds of a 5 s budget; production's table is a
    thousand times larger, so the prediction is seconds: no headroom."""
    pg_db.execute(items(SMALL_ROWS))
    pg_db.execute("ANALYZE items")
    migration = "UPDATE items SET amount = amount + 1;\n"
    passed = validate_sql(pg_db, migration, tmp_path, statement_timeout="5s")
    assert passed.verdict is Verdict.VALIDATED, passed.findings
    # Read after that run: its rolled-back UPDATE left dead rows, so the table is larger now.
    with pg_db.connect() as conn:
        clone_bytes = read_table_sizes(conn)["public.items"].bytes
    production = ProductionSizes(
        ProductionSource.FILE, {"public.items": TableSize(bytes=clone_bytes * 1000)}
    )
    judged = validate_sql(pg_db, migration, tmp_path, statement_timeout="5s", production=production)
    assert judged.verdict is Verdict.REJECTED
    finding = next(f for f in judged.findings if f.rule == Rule.TIMEOUT_HEADROOM)
    assert "at production scale (predicted)" in finding.message
    update = judged.statements[0]
    assert update.margins is not None
    assert update.margins.prediction is not None
    assert update.margins.prediction.factor == pytest.approx(1000)
    assert update.margins.headroom.predicted_statement_timeout is not None
    assert update.margins.headroom.predicted_statement_timeout > 0.5


def test_cli_reads_production_sizes_read_only_and_shows_both(
    pg_db: PgDatabase, pg_plain_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(items(1000))
    pg_plain_db.execute(items(10_000))
    for db in (pg_db, pg_plain_db):
        db.execute("ANALYZE items")
    migration = tmp_path / "m.sql"
    migration.write_text("ALTER TABLE items ALTER COLUMN account TYPE bigint;\n")
    base = ["validate", "--dsn", pg_db.dsn, "--migration", str(migration)]
    text = run_pgparity(*base, "--production-dsn", pg_plain_db.dsn)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "predicted at production scale" in text.stdout
    doc = json.loads(
        run_pgparity(*base, "--production-dsn", pg_plain_db.dsn, "--format", "json").stdout
    )
    assert doc["margins"]["production"] == "dsn"
    prediction = doc["statements"][0]["margins"]["prediction"]
    assert prediction["growth"] == "linear"
    assert prediction["factor"] > 3
    assert prediction["tables"][0]["name"] == "public.items"
    markdown = run_pgparity(*base, "--production-dsn", pg_plain_db.dsn, "--format", "markdown")
    assert "predicted" in markdown.stdout
    assert "% of statement_timeout" in markdown.stdout


@pytest.mark.parametrize(
    "content",
    [
        "tables: [{name: public.items, size: lots}]",
        "tables: [{name: public.items, size: 1GB, rows: -1}]",
        "tables: [{name: public.items, sise: 1GB}]",
        "tables: {public.items: 1GB}",
        "- not a mapping",
        "tables: [{name: public.items}]",
    ],
)
def test_cli_refuses_a_bad_production_sizes_file(pg_db: PgDatabase, tmp_path, content: str) -> None:
    sizes = tmp_path / "sizes.yaml"
    sizes.write_text(content)
    result = _validate_trivial(pg_db, tmp_path, "--production-sizes", str(sizes))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "--production-sizes" in result.stderr


def test_cli_production_dsn_unreachable_is_exit_4_without_the_password(
    pg_db: PgDatabase, tmp_path
) -> None:
    result = _validate_trivial(
        pg_db,
        tmp_path,
        "--production-dsn",
        "host=127.0.0.1 port=1 user=x password=hunter2secret dbname=prod connect_timeout=2",
    )
    assert result.returncode == 4, result.stderr
    assert "hunter2secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def _validate_trivial(db: PgDatabase, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    migration = tmp_path / "m.sql"
    migration.write_text("SELECT 1;\n")
    return run_pgparity("validate", "--dsn", db.dsn, "--migration", str(migration), *args)
