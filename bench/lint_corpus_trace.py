"""`make bench-lint-trace`: what the trace makes of the static findings on a real corpus.

A local cluster (`LocalCluster`, PostgreSQL 15) gets a corpus's migrations applied in order up
to `--cut`; then the corpus's biggest tables get volume (`--rows table=N`, filled with
generate_series, foreign keys pointing at existing rows); then every later migration up to
`--stop` is validated there (`pgparity validate`'s engine: a rolled-back dry-run, traced) and
then applied for real, as the project's migration tool would, so the next one sees its schema.
Each file is linted as running in one transaction (``--assume-in-transaction``, the default:
diesel wraps each migration in one), so the statements after a dangerous lock are found.
Printed, as Markdown: per rule, how many static findings the trace confirmed, dismissed, did
not observe (the statement did not run) or does not judge (types, transactions), and the
confirmed findings with the evidence.

For Lemmy (README): the first 247 migrations run on PostgreSQL 15 (the 248th needs 16's
subqueries without an alias), so the defaults validate migrations 156–247 on top of the
schema of June 2023, with 100 000 persons, 1 000 communities, 500 000 posts and 1 000 000
comments (and their aggregates rows):

    .venv/bin/python bench/lint_corpus_trace.py --corpus /tmp/lemmy/migrations
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgparity.engine.execute.dryrun import Timeouts
from pgparity.engine.validate import MigrationFile, Target, ValidationOptions, validate
from pgparity.lint import LintConfig
from pgparity.models.quantities import parse_duration
from pgparity.models.report import Judgement, StaticFinding
from pgparity.pg.clone import mark_clone
from pgparity.pg.localcluster import LocalCluster

DEFAULT_ROWS = (
    "instance=10",
    "person=100000",
    "community=1000",
    "post=500000",
    "comment=1000000",
)
# Tables holding one row per row of another (Lemmy's aggregates, kept by triggers that the
# bulk fill bypasses): filled from their parent afterwards.
DEFAULT_PER_PARENT = (
    "person_aggregates=person",
    "community_aggregates=community",
    "post_aggregates=post",
    "comment_aggregates=comment",
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    files = sorted(args.corpus.glob(args.pattern))[: args.stop]
    rows = dict(_table_rows(spec) for spec in args.rows)
    started = time.perf_counter()
    with LocalCluster(replicas=0, durable=False, progress=_say) as cluster:
        dsn = cluster.primary_dsn
        with psycopg.connect(dsn, autocommit=True) as conn:
            mark_clone(conn, "lint-corpus")
            applied = _apply(conn, files[: args.cut])
            _say(f"applied {applied} of the first {args.cut} migrations")
            # Triggers and foreign-key checks off while filling (the values are made to fit).
            conn.execute("SET session_replication_role = replica")
            for table, count in rows.items():
                _fill(conn, table, count)
            for child, parent in (_table_parent(spec) for spec in args.per_parent):
                _fill(conn, child, 0, parent=parent)
            conn.execute("RESET session_replication_role")
            conn.execute("ANALYZE")
        judged, failed = _validate_each(dsn, files[args.cut :], args)
    print(_report(judged, failed, len(files) - args.cut, rows, time.perf_counter() - started))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--pattern", default="*/up.sql")
    parser.add_argument("--cut", type=int, default=155, help="migrations applied before volume")
    parser.add_argument("--stop", type=int, default=247, help="migrations considered in all")
    parser.add_argument("--rows", nargs="*", default=list(DEFAULT_ROWS), metavar="TABLE=N")
    parser.add_argument(
        "--per-parent", nargs="*", default=list(DEFAULT_PER_PARENT), metavar="TABLE=PARENT"
    )
    # Production's settings, which validate applies: Lemmy's migrations run with PostgreSQL's
    # defaults (no lock_timeout, no statement_timeout).
    parser.add_argument("--lock-timeout", default="0")
    parser.add_argument("--statement-timeout", default="0")
    # diesel (Lemmy's runner) wraps each migration in a transaction: locks are held to its end.
    parser.add_argument(
        "--assume-in-transaction", action=argparse.BooleanOptionalAction, default=True
    )
    return parser


def _say(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def _table_rows(spec: str) -> tuple[str, int]:
    table, _, count = spec.partition("=")
    return table, int(count)


def _table_parent(spec: str) -> tuple[str, str]:
    table, _, parent = spec.partition("=")
    return table, parent


def _apply(conn: psycopg.Connection[Any], files: Sequence[Path]) -> int:
    """Each file in a transaction of its own, as diesel runs them; failures are reported."""
    applied = 0
    for path in files:
        try:
            with conn.transaction():
                conn.execute(path.read_text(encoding="utf-8").encode())
            applied += 1
        except psycopg.Error as exc:
            _say(f"  {path.parent.name}: not applied: {str(exc).splitlines()[0]}")
    return applied


# --- volume: generate_series rows that satisfy NOT NULL, UNIQUE and foreign keys ----------

_COLUMNS = """
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typtype,
       a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
       (SELECT pg_catalog.format('%%I.%%I', rn.nspname, r.relname)
          FROM pg_catalog.pg_constraint k
          JOIN pg_catalog.pg_class r ON r.oid = k.confrelid
          JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
         WHERE k.conrelid = a.attrelid AND k.contype = 'f' AND k.conkey = ARRAY[a.attnum]
         LIMIT 1),
       t.oid
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def _fill(conn: psycopg.Connection[Any], table: str, count: int, parent: str | None = None) -> None:
    """``count`` rows numbered by ``g``; or, with ``parent``, one row per parent row, whose
    id is ``g`` and goes into the column referencing the parent."""
    started = time.perf_counter()
    names, values = [], []
    own_parent = f"public.{parent}" if parent else None
    for column, type_, kind, not_null, has_default, references, type_oid in conn.execute(
        _COLUMNS, {"table": table}
    ).fetchall():
        if references is not None and references == own_parent:
            value: sql.Composable | None = sql.SQL("g")
        else:
            value = _value(conn, type_, kind, references, type_oid)
        if references is not None or (not_null and not has_default):
            if value is None:
                raise SystemExit(f"cannot fill {table}.{column} ({type_})")
            names.append(sql.Identifier(column))
            values.append(value)
    source = (
        sql.SQL("(SELECT id AS g FROM {}) s").format(sql.Identifier(parent))
        if parent
        else sql.SQL("generate_series(1, {}) g").format(count)
    )
    query = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        sql.Identifier(table), sql.SQL(", ").join(names), sql.SQL(", ").join(values), source
    )
    done = conn.execute(query).rowcount
    _say(f"filled {table} with {done} rows in {time.perf_counter() - started:.1f} s")


def _value(
    conn: psycopg.Connection[Any], type_: str, kind: str, references: str | None, type_oid: int
) -> sql.Composable | None:
    if references is not None:  # spread over the referenced table's existing ids
        low, high = conn.execute(
            sql.SQL("SELECT min(id), max(id) FROM {}").format(sql.SQL(references))
        ).fetchone() or (None, None)
        if low is None:
            return None
        return sql.SQL("{} + g % {}").format(low, high - low + 1)
    if kind == "e":
        label = conn.execute(
            "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder LIMIT 1",
            (type_oid,),
        ).fetchone()
        return sql.SQL("{}::{}").format(label[0], sql.SQL(type_)) if label else None
    base = type_.split("(")[0]
    return _BY_TYPE.get(base)


_BY_TYPE: dict[str, sql.Composable] = {
    "text": sql.SQL("'v' || g"),
    "character varying": sql.SQL("'v' || g"),
    "integer": sql.SQL("g"),
    "bigint": sql.SQL("g"),
    "smallint": sql.SQL("(g % 1000)::smallint"),
    "boolean": sql.SQL("false"),
    "timestamp without time zone": sql.SQL("now() - g * interval '1 minute'"),
    "timestamp with time zone": sql.SQL("now() - g * interval '1 minute'"),
    "ltree": sql.SQL("'0'::ltree"),
    "jsonb": sql.SQL("'{}'::jsonb"),
    "double precision": sql.SQL("g::float8"),
    "real": sql.SQL("g::float4"),
    "uuid": sql.SQL("gen_random_uuid()"),
}


# --- validate each later migration, then apply it ---------------------------------------------


def _validate_each(
    dsn: str, files: Sequence[Path], args: argparse.Namespace
) -> tuple[list[tuple[str, StaticFinding]], list[str]]:
    options = ValidationOptions(
        timeouts=Timeouts(
            parse_duration(args.lock_timeout), parse_duration(args.statement_timeout)
        ),
        check_rerun=False,
        lint=LintConfig(assume_in_transaction=args.assume_in_transaction),
    )
    judged: list[tuple[str, StaticFinding]] = []
    failed: list[str] = []
    for number, path in enumerate(files, start=args.cut + 1):
        started = time.perf_counter()
        report = validate(MigrationFile.read(path), Target(dsn), options)
        judged += [(path.parent.name, s) for s in report.lint]
        counts = Counter(s.judgement.value for s in report.lint)
        _say(
            f"{number} {path.parent.name}: {report.verdict.value}, lint {dict(counts)} "
            f"({time.perf_counter() - started:.1f} s)"
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            if _apply(conn, [path]) == 0:
                failed.append(path.parent.name)
    return judged, failed


def _report(
    judged: list[tuple[str, StaticFinding]],
    failed: list[str],
    validated: int,
    rows: dict[str, int],
    seconds: float,
) -> str:
    by_rule: dict[str, Counter[Judgement]] = defaultdict(Counter)
    for _, finding in judged:
        by_rule[finding.rule][finding.judgement] += 1
    total: Counter[Judgement] = Counter(s.judgement for _, s in judged)
    volume = ", ".join(f"{table} {count:,}" for table, count in rows.items())
    lines = [
        f"{validated} migrations validated on a clone with {volume} rows "
        f"({seconds / 60:.1f} min in all); {len(failed)} could not be applied afterwards.",
        "",
        "| rule | findings | confirmed | dismissed | not observed | not judged |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rule, counts in sorted(by_rule.items(), key=lambda item: -sum(item[1].values())):
        lines.append(_row(f"`{rule}`", counts))
    lines.append(_row("**all**", total))
    confirmed = [(m, s) for m, s in judged if s.judgement is Judgement.CONFIRMED]
    lines += ["", "Confirmed:", ""]
    lines += [f"- `{m}` `{s.rule}`: {s.reason}" for m, s in confirmed]
    return "\n".join(lines)


def _row(label: str, counts: Counter[Judgement]) -> str:
    cells = [counts[j] for j in Judgement]
    return f"| {label} | {sum(cells)} | " + " | ".join(str(c) for c in cells) + " |"


if __name__ == "__main__":
    raise SystemExit(main())
