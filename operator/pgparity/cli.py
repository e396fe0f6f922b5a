"""The ``pgparity`` command: the only place errors become exit codes.

Exit codes (DESIGN.md): 0 VALIDATED / ok · 1 REJECTED / check failed · 2 bad input or usage ·
3 schema drift · 4 cannot reach or use a database or the API server. Errors are one line on
stderr, never a traceback, and never contain a password.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import yaml

from pgparity import __version__
from pgparity.engine.connection import connect, redact
from pgparity.engine.digest import CatalogSnapshot, diff_snapshots, take_snapshot
from pgparity.engine.dryrun import Timeouts
from pgparity.engine.holdlock import HoldLock
from pgparity.engine.localcluster import LocalCluster
from pgparity.engine.observation import Budgets, ObservationOptions, TrafficPlan
from pgparity.engine.reports import FORMATS, render, summary_line
from pgparity.engine.validate import (
    MigrationFile,
    Target,
    ValidationOptions,
    check_digest_syntax,
    validate,
)
from pgparity.errors import DatabaseError, DriftError, PgparityError, SpecError, UsageError
from pgparity.models.quantities import is_duration, parse_duration, parse_size
from pgparity.models.report import ValidationReport, Verdict
from pgparity.models.workload import ExplainFile, Workload

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_DRIFT = 3
EXIT_DATABASE = 4
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70

Progress = Callable[[str], None]


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so every cleanup (local clusters, temp files) runs."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pgparity",
        description="Staging that predicts production for PostgreSQL schema migrations.",
    )
    parser.add_argument("--version", action="version", version=f"pgparity {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_validate(
        commands.add_parser(
            "validate",
            help="dry-run a migration and print a verdict",
            description="Run a migration as a rolled-back dry-run under production timeouts and "
            "report what it really does: locks, rewrites, WAL, durations, errors.",
        )
    )
    digest = commands.add_parser("digest", help="print the schema digest of a database")
    digest.add_argument("--dsn", required=True, help="database to read (read-only connection)")
    digest.add_argument(
        "--save",
        type=Path,
        metavar="FILE",
        help="also save the catalog snapshot, a baseline for `drift`",
    )
    drift = commands.add_parser("drift", help="compare a database's schema with an expectation")
    drift.add_argument("--dsn", required=True, help="database to read (read-only connection)")
    expect = drift.add_mutually_exclusive_group(required=True)
    expect.add_argument("--expect", metavar="sha256:HEX", help="expected schema digest")
    expect.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="snapshot saved by `digest --save`; lists what differs",
    )
    return parser


def _add_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--migration", required=True, type=Path, metavar="FILE")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--dsn", help="staging primary to dry-run against")
    where.add_argument(
        "--local",
        action="store_true",
        help="create a local primary + streaming replica for the run",
    )
    p.add_argument("--replica-dsn", help="streaming replica of --dsn")
    p.add_argument(
        "--seed-sql",
        type=Path,
        metavar="FILE",
        help="with --local: SQL (psql syntax) to load before the run",
    )
    p.add_argument("--lock-timeout", default="5s", help="production lock_timeout (default 5s)")
    p.add_argument(
        "--statement-timeout", default="30s", help="production statement_timeout (default 30s)"
    )
    p.add_argument(
        "--expect-digest",
        metavar="sha256:HEX",
        help="refuse to run (exit 3) unless the schema has this digest",
    )
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument(
        "--no-rerun-check",
        dest="rerun_check",
        action="store_false",
        help="skip re-running the migration to detect non-idempotent statements",
    )
    observe = p.add_argument_group("traffic and observation")
    observe.add_argument(
        "--traffic",
        metavar="auto|FILE",
        help="run traffic during the migration: 'auto' (key reads, updates, inserts on the "
        "tables it touches) or a YAML workload file",
    )
    observe.add_argument(
        "--traffic-clients",
        type=int,
        default=4,
        metavar="N",
        help="client sessions for --traffic auto (default 4)",
    )
    observe.add_argument(
        "--traffic-rate",
        type=float,
        default=20.0,
        metavar="N",
        help="transactions per second per client for --traffic auto "
        "(default 20; 0 = as fast as possible)",
    )
    observe.add_argument(
        "--hold-lock",
        action="append",
        default=[],
        metavar="TABLE:SECONDS",
        help="a transaction that has read TABLE stays open this long (repeatable)",
    )
    observe.add_argument(
        "--explain",
        type=Path,
        metavar="FILE",
        help="YAML queries to EXPLAIN before and after, with expectations",
    )
    observe.add_argument(
        "--max-lock-wait",
        metavar="DURATION",
        help="budget: longest any session may wait for the migration's locks",
    )
    observe.add_argument(
        "--max-blocked-sessions",
        type=int,
        metavar="N",
        help="budget: most sessions blocked behind the migration at once",
    )
    observe.add_argument(
        "--max-replication-lag",
        metavar="SIZE|DURATION",
        help="budget: largest replication lag, e.g. 64MB or 10s",
    )
    observe.add_argument(
        "--sample-period",
        default="50ms",
        metavar="DURATION",
        help="how often the observer samples (default 50ms)",
    )
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--output", type=Path, metavar="FILE", help="write the report here")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _raise_terminated)
    args = build_parser().parse_args(argv)
    secrets = [v for v in (getattr(args, "dsn", None), getattr(args, "replica_dsn", None)) if v]
    try:
        return int(COMMANDS[args.command](args))
    except UsageError as exc:
        return _fail(exc, secrets, EXIT_USAGE)
    except DriftError as exc:
        return _fail(exc, secrets, EXIT_DRIFT)
    except DatabaseError as exc:
        return _fail(exc, secrets, EXIT_DATABASE)
    except PgparityError as exc:
        return _fail(exc, secrets, EXIT_DATABASE)
    except (KeyboardInterrupt, Terminated):
        sys.stderr.write("pgparity: interrupted; cleaned up\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: still one line, still no password
        if os.environ.get("PGPARITY_DEBUG"):
            raise
        return _fail(
            RuntimeError(
                f"internal error ({type(exc).__name__}: {exc}); "
                "set PGPARITY_DEBUG=1 for a traceback"
            ),
            secrets,
            EXIT_INTERNAL,
        )


def _fail(exc: BaseException, secrets: list[str], code: int) -> int:
    message = " ".join(str(exc).split())
    for dsn in secrets:
        message = redact(message, dsn)
    sys.stderr.write(f"pgparity: error: {message}\n")
    return code


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _progress(quiet: bool) -> Progress:
    def emit(message: str) -> None:
        if not quiet:
            sys.stderr.write(f"pgparity: {message}\n")
            sys.stderr.flush()

    return emit


def cmd_validate(args: argparse.Namespace) -> int:
    migration = MigrationFile.read(args.migration)
    options = ValidationOptions(
        timeouts=Timeouts(
            lock_timeout=parse_duration(args.lock_timeout, what="--lock-timeout"),
            statement_timeout=parse_duration(args.statement_timeout, what="--statement-timeout"),
        ),
        expect_digest=check_digest_syntax(args.expect_digest) if args.expect_digest else None,
        strict=args.strict,
        check_rerun=args.rerun_check,
        observation=_observation_options(args),
        explain=_explain_file(args.explain) if args.explain else None,
    )
    if args.seed_sql and not args.local:
        raise UsageError("--seed-sql needs --local (it loads the local cluster)")
    if args.replica_dsn and args.local:
        raise UsageError("--replica-dsn cannot be combined with --local (which makes its own)")
    if args.seed_sql and not args.seed_sql.is_file():
        raise UsageError(f"seed SQL file {args.seed_sql} does not exist")
    progress = _progress(args.quiet)
    if args.local:
        report = _validate_local(migration, options, args.seed_sql, progress)
    else:
        report = validate(migration, Target(args.dsn, args.replica_dsn), options, progress)
    _emit_report(report, args.format, args.output)
    return _exit_code(report)


def _observation_options(args: argparse.Namespace) -> ObservationOptions:
    period = parse_duration(args.sample_period, what="--sample-period").seconds
    if not 0.001 <= period <= 10:
        raise UsageError(f"--sample-period {args.sample_period!r} must be between 1ms and 10s")
    return ObservationOptions(
        period=period,
        traffic=_traffic_plan(args),
        hold_locks=tuple(HoldLock.parse(text) for text in args.hold_lock),
        budgets=_budgets(args),
    )


def _traffic_plan(args: argparse.Namespace) -> TrafficPlan | None:
    if not args.traffic:
        return None
    if not 1 <= args.traffic_clients <= 256:
        raise UsageError("--traffic-clients must be between 1 and 256")
    if args.traffic_rate < 0:
        raise UsageError("--traffic-rate must not be negative (0 = as fast as possible)")
    if args.traffic == "auto":
        return TrafficPlan(auto=True, clients=args.traffic_clients, rate=args.traffic_rate)
    document = _load_yaml(Path(args.traffic), "--traffic")
    try:
        return TrafficPlan(workload=Workload.parse(document))
    except SpecError as exc:
        raise UsageError(f"--traffic {args.traffic}: {exc}") from None


def _budgets(args: argparse.Namespace) -> Budgets:
    lag_bytes = lag_seconds = None
    if args.max_replication_lag:
        if is_duration(args.max_replication_lag):
            lag_seconds = parse_duration(args.max_replication_lag).seconds
        else:
            lag_bytes = parse_size(args.max_replication_lag, what="--max-replication-lag").bytes
    if args.max_blocked_sessions is not None and args.max_blocked_sessions < 0:
        raise UsageError("--max-blocked-sessions must not be negative")
    wait = (
        parse_duration(args.max_lock_wait, what="--max-lock-wait").seconds
        if args.max_lock_wait
        else None
    )
    if (
        (wait is not None and wait <= 0)
        or (lag_bytes is not None and lag_bytes <= 0)
        or (lag_seconds is not None and lag_seconds <= 0)
    ):
        raise UsageError("budgets must be positive")
    return Budgets(
        max_lock_wait_seconds=wait,
        max_blocked_sessions=args.max_blocked_sessions,
        max_lag_bytes=lag_bytes,
        max_lag_seconds=lag_seconds,
    )


def _explain_file(path: Path) -> ExplainFile:
    try:
        return ExplainFile.parse(_load_yaml(path, "--explain"))
    except SpecError as exc:
        raise UsageError(f"--explain {path}: {exc}") from None


def _load_yaml(path: Path, flag: str) -> Any:
    """A YAML document from ``path``; any problem is one line naming the flag and the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{flag} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{flag} file {path} cannot be read: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UsageError(f"{flag} file {path} is not valid YAML{where}") from None
    if document is None:
        raise UsageError(f"{flag} file {path} is empty")
    return document


def _validate_local(
    migration: MigrationFile, options: ValidationOptions, seed_sql: Path | None, progress: Progress
) -> ValidationReport:
    # The local cluster runs with the production timeouts as its configuration too, so even
    # statements outside the dry-run's own SET LOCAL meet them.
    settings = {
        "lock_timeout": options.timeouts.lock_timeout.as_setting(),
        "statement_timeout": options.timeouts.statement_timeout.as_setting(),
    }
    with LocalCluster(settings=settings, progress=progress) as cluster:
        if seed_sql:
            progress(f"loading {seed_sql}")
            cluster.run_sql_file(seed_sql)
            cluster.wait_replay()
        return validate(
            migration, Target(cluster.primary_dsn, cluster.replica_dsn), options, progress
        )


def _emit_report(report: ValidationReport, fmt: str, output: Path | None) -> None:
    text = render(report, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    _write_atomically(output, text)
    sys.stdout.write(summary_line(report) + f"\nreport written to {output}\n")


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename: never a half-written report."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _exit_code(report: ValidationReport) -> int:
    if any(f.rule == "schema-drift" for f in report.findings):
        return EXIT_DRIFT
    return EXIT_OK if report.verdict is Verdict.VALIDATED else EXIT_REJECTED


def cmd_digest(args: argparse.Namespace) -> int:
    if args.save and not (args.save.parent if str(args.save.parent) else Path(".")).is_dir():
        raise UsageError(f"cannot write {args.save}: its directory does not exist")
    with connect(args.dsn, role="database", read_only=True) as conn:
        snapshot = take_snapshot(conn)
    if args.save:
        snapshot.save(args.save)
    sys.stdout.write(snapshot.digest + "\n")
    return EXIT_OK


def cmd_drift(args: argparse.Namespace) -> int:
    expected_digest = check_digest_syntax(args.expect) if args.expect else None
    baseline = CatalogSnapshot.load(args.baseline) if args.baseline else None
    with connect(args.dsn, role="database", read_only=True) as conn:
        current = take_snapshot(conn)
    expected = baseline.digest if baseline else expected_digest
    if current.digest == expected:
        sys.stdout.write(f"no drift: {current.digest}\n")
        return EXIT_OK
    sys.stdout.write(f"drift: schema digest is {current.digest}, expected {expected}\n")
    if baseline:
        for change in diff_snapshots(baseline, current):
            sys.stdout.write(f"  {change.describe()}\n")
    return EXIT_DRIFT


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": cmd_validate,
    "digest": cmd_digest,
    "drift": cmd_drift,
}
