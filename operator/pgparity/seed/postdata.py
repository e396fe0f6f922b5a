"""Apply pg_dump's post-data section (indexes, constraints, triggers) in parallel, timing each.

The time each index takes to build on the clone is a parity result: production's index
builds take about as long on production-scale data. Statements are ordered as pg_restore would
need them: indexes and primary-key/unique constraints first (in parallel), then foreign keys (in
parallel; they need the referenced keys), then the rest in order (index attachments, triggers,
rules, materialized view refreshes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType

from pgparity.engine.connection import connect, error_message
from pgparity.errors import DatabaseError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PostDataStatement:
    sql: str
    phase: int
    kind: str
    name: str
    table: str
    table_key: tuple[str, str] | None = None  # (schema, name), unquoted


@dataclass(frozen=True)
class BuildTiming:
    kind: str
    name: str
    table: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "table": self.table,
            "seconds": round(self.seconds, 3),
        }


def split_post_data(script: str) -> tuple[list[str], list[PostDataStatement]]:
    """Session settings (SET …, set_config) and the post-data statements, classified."""
    settings: list[str] = []
    statements: list[PostDataStatement] = []
    # pg_dump's plain output carries psql meta-commands (\\restrict …, \\connect): not SQL.
    script = "\n".join("" if line.startswith("\\") else line for line in script.splitlines())
    for raw in parse_sql(script):
        node = raw.stmt
        start = raw.stmt_location or 0
        text = script[start : start + raw.stmt_len] if raw.stmt_len else script[start:]
        text = text.strip()
        if isinstance(node, ast.VariableSetStmt) or (
            isinstance(node, ast.SelectStmt) and "set_config" in text
        ):
            settings.append(text)
            continue
        if node is not None:
            statements.append(_classify(node, text))
    return settings, statements


def _classify(node: ast.Node, text: str) -> PostDataStatement:
    if isinstance(node, ast.IndexStmt):
        relation = node.relation
        return PostDataStatement(
            text, 1, "index", str(node.idxname or ""), _name(relation), _key(relation)
        )
    if isinstance(node, ast.AlterTableStmt):
        for cmd in node.cmds or ():
            constraint = getattr(cmd, "def_", None)
            if cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(
                constraint, ast.Constraint
            ):
                phase = 2 if constraint.contype == ConstrType.CONSTR_FOREIGN else 1
                kind = (
                    _CONSTRAINT_KINDS.get(constraint.contype, "constraint")
                    if constraint.contype is not None
                    else "constraint"
                )
                return PostDataStatement(
                    text,
                    phase,
                    kind,
                    str(constraint.conname or ""),
                    _name(node.relation),
                    _key(node.relation),
                )
    return PostDataStatement(text, 3, type(node).__name__, "", "")


_CONSTRAINT_KINDS = {
    ConstrType.CONSTR_PRIMARY: "primary key",
    ConstrType.CONSTR_UNIQUE: "unique constraint",
    ConstrType.CONSTR_EXCLUSION: "exclusion constraint",
    ConstrType.CONSTR_FOREIGN: "foreign key",
    ConstrType.CONSTR_CHECK: "check constraint",
}


def _key(relation: Any) -> tuple[str, str] | None:
    if not isinstance(relation, ast.RangeVar) or not relation.schemaname:
        return None
    return str(relation.schemaname), str(relation.relname)


def _name(relation: Any) -> str:
    if not isinstance(relation, ast.RangeVar):
        return ""
    return (
        f"{relation.schemaname}.{relation.relname}"
        if relation.schemaname
        else str(relation.relname)
    )


def apply_post_data(
    dsn: str,
    settings: Sequence[str],
    statements: Sequence[PostDataStatement],
    *,
    jobs: int,
    progress: Progress = lambda _: None,
) -> list[BuildTiming]:
    """Apply statements in pg_restore's order: keys and indexes, foreign keys, the rest."""
    timings: list[BuildTiming] = []
    for phase in (1, 2):
        batch = [s for s in statements if s.phase == phase]
        if batch:
            progress(
                f"post-data: {len(batch)} "
                f"{'indexes and keys' if phase == 1 else 'foreign keys'} with {jobs} jobs"
            )
            timings += _parallel(dsn, settings, batch, jobs, progress)
    rest = [s for s in statements if s.phase == 3]
    if rest:
        with open_session(dsn, settings) as conn:
            for statement in rest:
                timings.append(run_statement(conn, statement, progress))
    return timings


def _parallel(
    dsn: str,
    settings: Sequence[str],
    batch: Sequence[PostDataStatement],
    jobs: int,
    progress: Progress,
) -> list[BuildTiming]:
    # Longest first (by table size would need the catalog; statement order is pg_dump's).
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda s: _run_alone(dsn, settings, s, progress), batch))


def _run_alone(
    dsn: str, settings: Sequence[str], statement: PostDataStatement, progress: Progress
) -> BuildTiming:
    with open_session(dsn, settings) as conn:
        return run_statement(conn, statement, progress)


def open_session(dsn: str, settings: Sequence[str]) -> psycopg.Connection[Any]:
    conn = connect(dsn, role="target")
    for setting in settings:
        conn.execute(setting.encode())
    return conn


def run_statement(
    conn: psycopg.Connection[Any], statement: PostDataStatement, progress: Progress
) -> BuildTiming:
    started = time.perf_counter()
    try:
        conn.execute(statement.sql.encode())
    except psycopg.Error as exc:
        raise DatabaseError(
            f"post-data {statement.kind} {statement.name or ''} on "
            f"{statement.table or '?'} failed: {error_message(exc)}"
        ) from None
    timing = BuildTiming(
        statement.kind, statement.name, statement.table, time.perf_counter() - started
    )
    if statement.phase < 3:
        progress(f"built {timing.kind} {timing.name} on {timing.table} in {timing.seconds:.2f} s")
    return timing
