"""Nothing in the engines sends SQL text to the server except its own — or through sqlexec.

User SQL (migration statements, explain queries, traffic statements, samples) must reach the
server through ``sqlexec.execute_one``/``fetch_rows``, where the server refuses a second
statement. This test reads every engine module and checks the first argument of every
``.execute()``/``.executemany()``/``.stream()`` call: it must be SQL pgparity wrote — a string
literal, a module constant, a ``psycopg.sql`` composition — or one of the few names listed
below with the reason it is pgparity's own. A new call that passes anything else fails here
until it goes through ``sqlexec`` or is added, with its reason, to the list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "operator" / "pgparity"
CHECKED = ("engine", "parity", "pg", "schema", "clonecheck.py")
EXEMPT = {"pg/sqlexec.py"}  # the one module that sends user text, the way it must go
SENDING = {"execute", "executemany", "stream"}

# (module, function, argument as written): why it is pgparity's own SQL.
OWN_SQL = {
    ("schema/digest.py", "take_snapshot", "query"): "iterates catalog_sql.ALL_OBJECT_QUERIES",
    (
        "engine/execute/outside.py",
        "_restore",
        "step.statement",
    ): "compensation: sql.SQL from catalog",
    ("clonecheck.py", "_scalar", "query.encode()"): "callers pass module constants",
    ("engine/execute/residue.py", "_sequence_values", "query"): "sql.SQL join of sql.Identifiers",
    ("engine/execute/residue.py", "_attempt", "query"): "callers pass _SETVAL or _DROP_SLOT",
    ("engine/execute/buffers.py", "_read", "query"): "callers pass _ALL or _LOCKED",
    (
        "engine/observe/observer.py",
        "_activity_sample",
        "query",
    ): "one of two observer_sql constants",
    (
        "parity/remedy.py",
        "apply_statements",
        "statement",
    ): "ALTER … SET compositions of sql.Identifier and sql.Literal (parity_statements)",
}


def _constant_name(name: str) -> bool:
    return name.lstrip("_").isupper()


def _composed(node: ast.expr) -> bool:
    """``sql.SQL(…)``, ``sql.SQL(…).format(…)``, ``sql.SQL(…).join(…)``, ``sql.Identifier``."""
    while isinstance(node, ast.Call):
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "sql"
        ):
            return True
        node = func.value if isinstance(func, ast.Attribute) else func
    return False


def _own(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | bytes)
    if isinstance(node, ast.Name):
        return _constant_name(node.id)
    if isinstance(node, ast.Attribute):
        return _constant_name(node.attr)
    if isinstance(node, ast.IfExp):
        return _own(node.body) and _own(node.orelse)
    return _composed(node)


def _calls(path: Path) -> list[tuple[str, str, int]]:
    """(function, first argument as written, line) of every sending call in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SENDING
                and node.args
                and not _own(node.args[0])
            ):
                found.append((function.name, ast.unparse(node.args[0]), node.lineno))
    return found


def _modules() -> list[Path]:
    paths = [ROOT / name for name in CHECKED]
    return sorted(p for path in paths for p in ([path] if path.is_file() else path.rglob("*.py")))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_engines_send_only_their_own_sql_except_through_sqlexec(path: Path) -> None:
    module = str(path.relative_to(ROOT))
    if module in EXEMPT:
        return
    unexplained = [
        f"{module}:{line} {function}() sends {argument!r}"
        for function, argument, line in _calls(path)
        if (module, function, argument) not in OWN_SQL
    ]
    assert not unexplained, (
        "send user SQL through pgparity.pg.sqlexec.execute_one (or list pgparity's own "
        "SQL in OWN_SQL with its reason): " + "; ".join(unexplained)
    )


def test_every_listed_exception_still_exists() -> None:
    """A stale entry would let a later call of the same shape through unexamined."""
    present = {
        (str(path.relative_to(ROOT)), function, argument)
        for path in _modules()
        for function, argument, _ in _calls(path)
    }
    assert set(OWN_SQL) <= present, set(OWN_SQL) - present


def test_the_checker_catches_user_text(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def run(conn, statement, query):\n"
        "    conn.execute(statement.sql.encode())\n"
        "    conn.execute(f'EXPLAIN {query}')\n"
        "    conn.execute(QUERY)\n"
        "    conn.execute(sql.SQL('SELECT {}').format(sql.Literal(query)))\n"
    )
    assert [argument for _, argument, _ in _calls(sample)] == [
        "statement.sql.encode()",
        "f'EXPLAIN {query}'",
    ]
