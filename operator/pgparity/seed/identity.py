"""Proof, failing closed, that a write target is not the source database.

``seed`` drops what is in its target (``--replace``), creates and loads tables there, and marks
it as a clone — where pgparity later runs statements that cannot be rolled back. Doing any of
that to the source would be the one unforgivable mistake, and addresses prove nothing: the same
server answers on 127.0.0.1, 127.0.0.2, ``localhost`` and its Unix socket, behind a pooler or a
DNS alias. So the servers are asked, and whatever cannot be shown is a refusal:

1. The target DSN names one host, so every later connection reaches the server probed here.
2. The target is not in recovery (a standby's primary is where its data comes from).
3. Different ``current_database()`` (the server's own name, not a pooler's alias): different
   databases, on one server or two. Seeding into another database of the source's cluster is
   allowed, even when the source is a standby of the target's server.
4. The same name: the target, in a transaction, names its session ``pgparity-probe-<random>``
   and checks it sees itself in ``pg_stat_activity``; then the source looks for that session
   (every role sees other sessions' application names). Seen: the same database — refused.
   Not seen, and the postmasters started at different times: different servers.
5. A source in recovery could be a standby streaming from the target (writing the primary
   rewrites the standby): both system identifiers (``pg_control_system()``) must be readable
   and differ — a standby has its primary's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import pq, sql

from pgparity.errors import UsageError
from pgparity.pg.connection import parse_dsn
from pgparity.pg.replication import system_identifier

PROBE_PREFIX = "pgparity-probe-"
GRANT_CONTROL = "GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO {role}"

_FACTS = """
SELECT pg_catalog.current_database(), pg_catalog.pg_is_in_recovery(),
       pg_catalog.pg_postmaster_start_time(), current_user
"""
_SEES_ITSELF = """
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity
               WHERE pid = pg_catalog.pg_backend_pid() AND application_name = %s)
"""
_SEES_PROBE = """
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE application_name = %s)
"""


class Proof(StrEnum):
    """Why the target is not the source."""

    OTHER_DATABASE = "it is another database"
    OTHER_SERVER = "it is on another server, and the source is not a standby"
    OTHER_CLUSTER = "it is on another server, with another system identifier"


@dataclass(frozen=True)
class ServerFacts:
    database: str
    in_recovery: bool
    started: datetime
    role: str
    system_identifier: int | None  # None when pg_control_system() is not executable


def read_facts(conn: psycopg.Connection[Any]) -> ServerFacts:
    row = conn.execute(_FACTS).fetchone()
    assert row is not None
    database, in_recovery, started, role = row
    identifier = system_identifier(conn)
    return ServerFacts(str(database), bool(in_recovery), started, str(role), identifier)


def check_single_host(dsn: str, what: str) -> None:
    """A DSN listing several hosts could reach another server on a later connection."""
    params = parse_dsn(dsn)
    if any("," in params.get(key, "") for key in ("host", "hostaddr", "port")):
        raise UsageError(
            f"the {what} DSN names several hosts; writing needs exactly one, so that every "
            "connection reaches the database whose identity pgparity checked"
        )


def check_writable(facts: ServerFacts, what: str) -> None:
    if facts.in_recovery:
        raise UsageError(
            f"the {what} is a standby (in recovery): refusing to write to it; "
            "give its primary's DSN"
        )


def prove_not_source(
    source: psycopg.Connection[Any], target: psycopg.Connection[Any], target_dsn: str
) -> Proof:
    """Why ``target`` is not ``source``'s database, or UsageError saying what is unproven."""
    check_single_host(target_dsn, "target")
    mine, theirs = read_facts(source), read_facts(target)
    check_writable(theirs, "target")
    if mine.database != theirs.database:
        return Proof.OTHER_DATABASE
    if _probe_seen_by(source, target):
        raise UsageError(
            f"the target is the source database itself (database {mine.database} on the same "
            "server); refusing to write to it"
        )
    if mine.started == theirs.started:
        raise UsageError(
            "cannot prove the target is not the source: both servers started at "
            f"{mine.started.isoformat()}, but the source does not see the target's session in "
            "pg_stat_activity (is a connection pooler in between?)"
        )
    if not mine.in_recovery:
        return Proof.OTHER_SERVER
    return _prove_other_cluster(mine, theirs)


def _prove_other_cluster(source: ServerFacts, target: ServerFacts) -> Proof:
    unreadable = [
        f"{GRANT_CONTROL.format(role=sql.Identifier(facts.role).as_string(None))} on the {what}"
        + (" (run on its primary)" if what == "source" else "")
        for what, facts in (("source", source), ("target", target))
        if facts.system_identifier is None
    ]
    if unreadable:
        raise UsageError(
            "cannot prove the target is not the source: the source is a standby and its "
            f"database has the target's name ({source.database}), so it may stream from the "
            "target; comparing system identifiers needs pg_control_system(): "
            + "; ".join(unreadable)
        )
    if source.system_identifier == target.system_identifier:
        raise UsageError(
            "the source is a standby of the target's cluster (both have system identifier "
            f"{source.system_identifier}): writing the target could change the source; "
            "refusing"
        )
    return Proof.OTHER_CLUSTER


def _probe_seen_by(source: psycopg.Connection[Any], target: psycopg.Connection[Any]) -> bool:
    """Name a target session with a random probe name; does the source see that session?"""
    # The source's statement must start its own transaction: pg_stat_activity is read once per
    # transaction, and an older view would not show the probe.
    assert source.info.transaction_status == pq.TransactionStatus.IDLE
    probe = PROBE_PREFIX + secrets.token_hex(12)
    # In one transaction, so a pooler keeps the target's server session while the source looks;
    # set_config(…, true) ends with it.
    with target.transaction():
        target.execute("SELECT pg_catalog.set_config('application_name', %s, true)", (probe,))
        itself = target.execute(_SEES_ITSELF, (probe,)).fetchone()
        if not itself or not itself[0]:
            raise UsageError(
                "cannot prove the target is not the source: the target does not show its own "
                "session in pg_stat_activity (connect to the PostgreSQL server itself, not "
                "through a proxy)"
            )
        seen = source.execute(_SEES_PROBE, (probe,)).fetchone()
    return bool(seen and seen[0])
