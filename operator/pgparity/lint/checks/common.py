"""What several families of checks share: how a lock is described, and ALTER TABLE's target."""

from __future__ import annotations

from pglast import ast

from pgparity.lint.locks import LockMode
from pgparity.lint.nodes import alter_commands, relation_name
from pgparity.lint.source import Statement
from pgparity.lint.state import FileState


def takes(lock: LockMode, relation: str | None) -> str:
    """``takes SHARE on public.orders (blocks writes)``."""
    where = f" on {relation}" if relation else ""
    return f"takes {lock.sql_name}{where} ({lock.blocks})"


def altered_table(
    statement: Statement, state: FileState
) -> tuple[str | None, list[ast.AlterTableCmd]]:
    """The table an ALTER TABLE changes, and its commands — none for a table the file
    created above, which nobody uses yet."""
    node = statement.node
    assert isinstance(node, ast.AlterTableStmt)
    table = relation_name(node.relation)
    return table, [] if state.is_new(table) else list(alter_commands(node))
