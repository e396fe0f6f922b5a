"""Constraints: UNIQUE, PRIMARY KEY, EXCLUDE, CHECK and FOREIGN KEY without NOT VALID,
VALIDATE in the adding transaction, SET NOT NULL, domain constraints."""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.enums import AlterTableType, ConstrType

from pgparity.lint.catalog import Rule
from pgparity.lint.checks.common import altered_table, takes
from pgparity.lint.findings import Hit
from pgparity.lint.locks import LockMode
from pgparity.lint.nodes import added_constraints as constraints_of
from pgparity.lint.nodes import alter_commands, constraint_location, qualified, relation_name
from pgparity.lint.source import Statement
from pgparity.lint.state import FileState

AEL = LockMode.ACCESS_EXCLUSIVE
SRE = LockMode.SHARE_ROW_EXCLUSIVE


def added_constraints(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.AlterTableStmt)
    table = relation_name(node.relation)
    if state.is_new(table):
        return
    for constraint, column in constraints_of(node):
        if constraint.indexname and table in state.not_null_set:
            continue  # USING INDEX after the file made columns NOT NULL: nothing to scan
        hit = _constraint_hit(constraint, column, table)
        if hit is not None:
            yield hit


def _constraint_hit(
    constraint: ast.Constraint, column: str | None, table: str | None
) -> Hit | None:
    kind = constraint.contype
    name = f" {constraint.conname}" if constraint.conname else ""
    where = constraint_location(constraint)
    on_column = f" with new column {column}" if column else ""
    if kind == ConstrType.CONSTR_UNIQUE and not constraint.indexname:
        return Hit(
            Rule.ADD_UNIQUE_CONSTRAINT,
            f"UNIQUE constraint{name}{on_column} builds its index while the ALTER TABLE "
            f"{takes(AEL, table)}; build the unique index CONCURRENTLY, then ADD CONSTRAINT … "
            "UNIQUE USING INDEX",
            where,
            table,
            AEL,
        )
    if kind == ConstrType.CONSTR_PRIMARY:
        return _primary_key_hit(constraint, name, table, where)
    if kind == ConstrType.CONSTR_EXCLUSION:
        return Hit(
            Rule.ADD_EXCLUSION_CONSTRAINT,
            f"EXCLUDE constraint{name} builds its index while the ALTER TABLE "
            f"{takes(AEL, table)}; there is no online way to add one",
            where,
            table,
            AEL,
        )
    if kind == ConstrType.CONSTR_CHECK and not constraint.skip_validation:
        return Hit(
            Rule.CHECK_CONSTRAINT_WITHOUT_NOT_VALID,
            f"CHECK constraint{name}{on_column} is validated by scanning every row while the "
            f"ALTER TABLE {takes(AEL, table)}; add it NOT VALID, then VALIDATE CONSTRAINT in "
            "another transaction",
            where,
            table,
            AEL,
        )
    if kind == ConstrType.CONSTR_FOREIGN and not constraint.skip_validation:
        return _foreign_key_hit(constraint, name, on_column, table, where)
    if kind == ConstrType.CONSTR_NOTNULL and column is None:
        return _not_null_hit(", ".join(str(k.sval) for k in constraint.keys or ()), table)
    return None


def _primary_key_hit(
    constraint: ast.Constraint, name: str, table: str | None, where: int | None
) -> Hit:
    if constraint.indexname:
        return Hit(
            Rule.PRIMARY_KEY_USING_INDEX,
            f"PRIMARY KEY{name} USING INDEX {constraint.indexname} sets its columns NOT NULL, "
            f"scanning the table while the ALTER TABLE {takes(AEL, table)}, unless they "
            "already are; make them NOT NULL safely first",
            where,
            table,
            AEL,
        )
    return Hit(
        Rule.ADD_PRIMARY_KEY,
        f"PRIMARY KEY{name} builds its index (and checks NOT NULL) while the ALTER TABLE "
        f"{takes(AEL, table)}; build a unique index CONCURRENTLY, then ADD CONSTRAINT … "
        "PRIMARY KEY USING INDEX",
        where,
        table,
        AEL,
    )


def _foreign_key_hit(
    constraint: ast.Constraint, name: str, on_column: str, table: str | None, where: int | None
) -> Hit:
    referenced = relation_name(constraint.pktable)
    return Hit(
        Rule.FOREIGN_KEY_WITHOUT_NOT_VALID,
        f"FOREIGN KEY{name}{on_column} is validated by scanning every row while it takes "
        f"SHARE ROW EXCLUSIVE on {table} and {referenced} (blocks writes to both); add it NOT "
        "VALID, then VALIDATE CONSTRAINT in another transaction",
        where,
        table,
        SRE,
    )


def validate_constraint(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.AlterTableStmt)
    table = relation_name(node.relation) or ""
    for cmd in alter_commands(node):
        if cmd.subtype == AlterTableType.AT_ValidateConstraint and (
            (table, str(cmd.name)) in state.not_valid
        ):
            held = state.held.get(table, AEL)
            yield Hit(
                Rule.VALIDATE_IN_SAME_TRANSACTION,
                f"VALIDATE CONSTRAINT {cmd.name} runs in the transaction that added it NOT VALID,"
                f" so its scan runs under the {held.sql_name} lock the ADD took on {table} "
                f"({held.blocks}); COMMIT in between",
                relation=table,
                lock=held,
            )


def set_not_null(statement: Statement, state: FileState) -> Iterator[Hit]:
    table, commands = altered_table(statement, state)
    for cmd in commands:
        if cmd.subtype != AlterTableType.AT_SetNotNull:
            continue
        if (table or "", str(cmd.name)) in state.not_null_checks:
            continue  # a validated CHECK (col IS NOT NULL) lets PostgreSQL 12+ skip the scan
        yield _not_null_hit(str(cmd.name), table)


def _not_null_hit(column: str, table: str | None) -> Hit:
    return Hit(
        Rule.SET_NOT_NULL,
        f"SET NOT NULL on {column} scans every row while it {takes(AEL, table)}; add CHECK "
        f"({column} IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (no scan)",
        relation=table,
        lock=AEL,
    )


def alter_domain(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.AlterDomainStmt)
    domain = qualified(node.typeName)
    constraint = node.def_ if isinstance(node.def_, ast.Constraint) else None
    adds = node.subtype == "C" and constraint is not None and not constraint.skip_validation
    if adds or node.subtype == "N":
        change = "ADD CONSTRAINT" if adds else "SET NOT NULL"
        yield Hit(
            Rule.ALTER_DOMAIN_ADD_CONSTRAINT,
            f"ALTER DOMAIN {domain} {change} checks every column of that domain in every table, "
            "blocking writes to each while it scans; add the constraint NOT VALID and VALIDATE "
            "it later",
            lock=LockMode.SHARE,
        )


def create_domain(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.CreateDomainStmt)
    checks = [
        c
        for c in node.constraints or ()
        if isinstance(c, ast.Constraint) and c.contype == ConstrType.CONSTR_CHECK
    ]
    if checks:
        yield Hit(
            Rule.CREATE_DOMAIN_WITH_CONSTRAINT,
            f"domain {qualified(node.domainname)} has a CHECK constraint: changing it later "
            "re-checks every column using the domain, and columns cannot switch to or from it "
            "without a rewrite; prefer CHECK constraints on the tables",
            constraint_location(checks[0]),
        )
