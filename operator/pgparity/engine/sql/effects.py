"""What a statement would do that the dry-run's ROLLBACK cannot take back — found before it runs.

The dry-run's promise is that nothing persists. Some SQL acts outside any transaction: it runs
a program or writes a file on the server, signals other sessions, changes the server's state,
creates replication slots, resets statistics, takes session-level advisory locks, or runs SQL
on another server. pgparity refuses such statements before anything runs (an error finding).
Two more are handled where they happen: sequence values (``nextval``/``setval`` advance them,
and INSERTs do it implicitly) are put back after the run on clones and reported elsewhere
(``residue``), and writes to foreign tables are refused by the dry-run when it sees their
target (``dryrun``). Statements that change how the server reads SQL text are refused too,
because the statement list pglast made would no longer be the one the server runs
(``sqlexec``).

The table below is the contract; each entry says why ROLLBACK cannot undo it (PostgreSQL 15,
"System Administration Functions", "Large Objects", "COPY", "dblink", "adminpack").
Functions are matched anywhere in a statement — in a view or a default too, since pgparity
cannot tell when those run — and inside DO blocks (``plpgsql``). What no static check sees:
functions that already exist in the database, and SQL a DO block builds at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pglast import ast
from pglast.enums import VariableSetKind
from pglast.visitors import Visitor

from pgparity.engine.sql.plpgsql import embedded_statements
from pgparity.pg.sqlexec import PINNED_LEXING


class Hazard(StrEnum):
    """Why a statement cannot be contained by the dry-run's transaction."""

    LEXING = "lexing"
    SERVER_PROGRAM = "server-program"
    SERVER_FILE = "server-file"
    OTHER_SESSIONS = "other-sessions"
    SERVER_STATE = "server-state"
    REPLICATION = "replication"
    STATISTICS = "statistics"
    SESSION_LOCK = "session-lock"
    REMOTE = "remote"


@dataclass(frozen=True)
class Effect:
    """One thing a statement does outside its transaction; ``refused`` ones stop the run."""

    hazard: Hazard
    what: str
    reason: str
    refused: bool = True

    @property
    def message(self) -> str:
        return f"{self.what} {self.reason}"


_FILE = "ROLLBACK cannot take back what happens to the server's files"
_READS_FILE = (Hazard.SERVER_FILE, "reads a file on the database server")
_OTHER_SESSION = "another session; ROLLBACK does not bring it back"
_NEW_SLOT = (
    Hazard.REPLICATION,
    "creates a replication slot, which is not transactional and holds WAL back",
)
_CONSUMES = (Hazard.REPLICATION, "consumes a logical slot's changes for good")
_SESSION_LOCK = (
    Hazard.SESSION_LOCK,
    "takes a session-level advisory lock, which ROLLBACK does not release",
)
_BACKUP = (Hazard.SERVER_STATE, "starts or ends a base backup of the cluster")

# Built-in functions (matched unqualified or in pg_catalog): hazard and why.
BUILTIN_FUNCTIONS: Mapping[str, tuple[Hazard, str]] = {
    "lo_export": (Hazard.SERVER_FILE, f"writes a file on the database server; {_FILE}"),
    "lo_import": _READS_FILE,
    "pg_read_file": _READS_FILE,
    "pg_read_binary_file": _READS_FILE,
    "pg_terminate_backend": (Hazard.OTHER_SESSIONS, f"terminates {_OTHER_SESSION}"),
    "pg_cancel_backend": (Hazard.OTHER_SESSIONS, f"cancels the query of {_OTHER_SESSION}"),
    "pg_reload_conf": (Hazard.SERVER_STATE, "reloads the server's configuration at once"),
    "pg_rotate_logfile": (Hazard.SERVER_STATE, "rotates the server's log file at once"),
    "pg_switch_wal": (Hazard.SERVER_STATE, "switches the cluster to a new WAL file at once"),
    "pg_create_restore_point": (Hazard.SERVER_STATE, "writes a restore point into the WAL"),
    "pg_backup_start": _BACKUP,
    "pg_backup_stop": _BACKUP,
    "pg_start_backup": _BACKUP,
    "pg_stop_backup": _BACKUP,
    "pg_promote": (Hazard.SERVER_STATE, "promotes a standby"),
    "pg_wal_replay_pause": (Hazard.SERVER_STATE, "pauses WAL replay on a standby"),
    "pg_wal_replay_resume": (Hazard.SERVER_STATE, "resumes WAL replay on a standby"),
    "pg_create_physical_replication_slot": _NEW_SLOT,
    "pg_create_logical_replication_slot": _NEW_SLOT,
    "pg_copy_physical_replication_slot": _NEW_SLOT,
    "pg_copy_logical_replication_slot": _NEW_SLOT,
    "pg_drop_replication_slot": (Hazard.REPLICATION, "drops a replication slot for good"),
    "pg_replication_slot_advance": (Hazard.REPLICATION, "advances a replication slot for good"),
    "pg_logical_slot_get_changes": _CONSUMES,
    "pg_logical_slot_get_binary_changes": _CONSUMES,
    "pg_logical_emit_message": (
        Hazard.REPLICATION,
        "can emit a non-transactional message into logical decoding",
    ),
    "pg_replication_origin_create": (Hazard.REPLICATION, "creates a replication origin"),
    "pg_replication_origin_drop": (Hazard.REPLICATION, "drops a replication origin"),
    "pg_replication_origin_advance": (Hazard.REPLICATION, "advances a replication origin"),
    "pg_replication_origin_session_setup": (
        Hazard.REPLICATION,
        "binds the session to a replication origin",
    ),
    "pg_stat_reset": (Hazard.STATISTICS, "resets the database's cumulative statistics"),
    "pg_stat_reset_shared": (Hazard.STATISTICS, "resets cluster-wide statistics"),
    "pg_stat_reset_single_table_counters": (Hazard.STATISTICS, "resets a table's statistics"),
    "pg_stat_reset_single_function_counters": (
        Hazard.STATISTICS,
        "resets a function's statistics",
    ),
    "pg_stat_reset_slru": (Hazard.STATISTICS, "resets SLRU statistics"),
    "pg_stat_reset_replication_slot": (Hazard.STATISTICS, "resets replication slot statistics"),
    "pg_stat_reset_subscription_stats": (Hazard.STATISTICS, "resets subscription statistics"),
    "pg_advisory_lock": _SESSION_LOCK,
    "pg_advisory_lock_shared": _SESSION_LOCK,
    "pg_try_advisory_lock": _SESSION_LOCK,
    "pg_try_advisory_lock_shared": _SESSION_LOCK,
}

# Extension functions, matched in any schema (extensions install where they are told to).
EXTENSION_FUNCTIONS: Mapping[str, tuple[Hazard, str]] = {
    "pg_file_write": (Hazard.SERVER_FILE, f"(adminpack) writes a server file; {_FILE}"),
    "pg_file_rename": (Hazard.SERVER_FILE, f"(adminpack) renames a server file; {_FILE}"),
    "pg_file_unlink": (Hazard.SERVER_FILE, f"(adminpack) deletes a server file; {_FILE}"),
    "pg_file_sync": (Hazard.SERVER_FILE, "(adminpack) flushes a server file to disk"),
    "pg_logfile_rotate": (Hazard.SERVER_STATE, "(adminpack) rotates the server's log file"),
    "pg_truncate_visibility_map": (
        Hazard.SERVER_STATE,
        "(pg_visibility) truncates a visibility map, which is not transactional",
    ),
    "pg_stat_statements_reset": (
        Hazard.STATISTICS,
        "(pg_stat_statements) resets the statement statistics",
    ),
}
# Every dblink function opens or uses a connection to another database, whose work commits
# there whatever this transaction does.
EXTENSION_PREFIXES: Mapping[str, tuple[Hazard, str]] = {
    "dblink": (
        Hazard.REMOTE,
        "(dblink) runs SQL in another session, which commits on its own; ROLLBACK here "
        "does not reach it",
    ),
}

_LEXING_REASON = (
    "changes how the server reads SQL text, so the statements pgparity split would no "
    "longer be the ones the server runs"
)


def classify(node: ast.Node) -> tuple[Effect, ...]:
    """Effects of one statement (and of the SQL inside it, for DO blocks), without repeats."""
    found: list[Effect] = []
    for statement in (node, *embedded_statements(node)):
        found.extend(_statement_effects(statement))
        found.extend(_function_effects(statement))
    return tuple(dict.fromkeys(found))


def _statement_effects(node: ast.Node) -> list[Effect]:
    if isinstance(node, ast.CopyStmt):
        return _copy_effects(node)
    if isinstance(node, ast.LoadStmt):
        return [
            Effect(Hazard.SERVER_STATE, "LOAD", "loads a shared library into the server process")
        ]
    if isinstance(node, ast.CheckPointStmt):
        return [
            Effect(Hazard.SERVER_STATE, "CHECKPOINT", "forces a cluster-wide checkpoint", False)
        ]
    if isinstance(node, ast.VacuumStmt) and not node.is_vacuumcmd:
        return [
            Effect(
                Hazard.STATISTICS,
                "ANALYZE",
                "updates planner statistics in place (pg_class.reltuples/relpages), which "
                "ROLLBACK does not undo",
                refused=False,
            )
        ]
    if (
        isinstance(node, ast.VariableSetStmt)
        and node.kind == VariableSetKind.VAR_SET_VALUE
        and node.name in PINNED_LEXING
    ):
        return [Effect(Hazard.LEXING, f"SET {node.name}", _LEXING_REASON)]
    return []


def _copy_effects(node: ast.CopyStmt) -> list[Effect]:
    direction = "FROM" if node.is_from else "TO"
    if node.is_program:
        return [
            Effect(
                Hazard.SERVER_PROGRAM,
                f"COPY … {direction} PROGRAM",
                "runs a program on the database server; ROLLBACK cannot take back what it did",
            )
        ]
    if node.filename:
        verb = "reads" if node.is_from else "writes"
        return [
            Effect(
                Hazard.SERVER_FILE,
                f"COPY … {direction} {node.filename!r}",
                f"{verb} a file on the database server" + ("" if node.is_from else f"; {_FILE}"),
            )
        ]
    return []


class _FunctionCalls(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[ast.FuncCall] = []

    def visit_FuncCall(self, ancestors: Any, node: ast.FuncCall) -> None:  # noqa: N802
        self.calls.append(node)


def _function_effects(node: ast.Node) -> list[Effect]:
    visitor = _FunctionCalls()
    visitor(node)
    found = []
    for call in visitor.calls:
        effect = function_effect(_name_parts(call))
        if effect is not None:
            found.append(effect)
        elif _sets_lexing(call):
            found.append(Effect(Hazard.LEXING, "set_config() of a lexer setting", _LEXING_REASON))
    return found


def _name_parts(call: ast.FuncCall) -> tuple[str, ...]:
    return tuple(str(getattr(part, "sval", "")) for part in call.funcname or ())


def function_effect(name: Sequence[str]) -> Effect | None:
    """The effect of calling the function ``name`` (``(schema, name)`` or ``(name,)``)."""
    if not name:
        return None
    schema, function = (name[-2] if len(name) > 1 else None), name[-1]
    entry = EXTENSION_FUNCTIONS.get(function) or next(
        (v for prefix, v in EXTENSION_PREFIXES.items() if function.startswith(prefix)), None
    )
    if entry is None and schema in (None, "pg_catalog"):
        entry = BUILTIN_FUNCTIONS.get(function)
    if entry is None:
        return None
    hazard, reason = entry
    return Effect(hazard, f"{function}()", reason)


def _sets_lexing(call: ast.FuncCall) -> bool:
    """``set_config('standard_conforming_strings', …)`` with the name written out."""
    if _name_parts(call)[-1:] != ("set_config",) or not call.args:
        return False
    first = call.args[0]
    if isinstance(first, ast.TypeCast):  # 'standard_conforming_strings'::text
        first = first.arg
    name = getattr(getattr(first, "val", None), "sval", None)
    return isinstance(first, ast.A_Const) and str(name).lower() in PINNED_LEXING
