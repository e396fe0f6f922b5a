"""`make bench-lint`: `pgparity lint` and squawk side by side on a real migration corpus.

The corpus is not in this repository (third-party content): fetch it and pass its directory.
The README's table was made from Lemmy's PostgreSQL migrations (342 `up.sql` files):

    git clone https://github.com/LemmyNet/lemmy /tmp/lemmy
    git -C /tmp/lemmy checkout 439734dd638a2c06a2f907beab7dcf4646e88f86
    .venv/bin/python bench/lint_corpus.py --corpus /tmp/lemmy/migrations

squawk comes from PyPI (`squawk-cli`, a binary wheel); `--install-squawk` puts the pinned
version into the running virtualenv. Printed, as Markdown: findings per rule for both tools;
for every squawk rule pgparity has an equivalent of, how many statements both flag, only one
flags, and the agreement (both / either); and the time of each tool (best of `--runs`, the
whole command, start-up included, wall and CPU: on a shared machine the CPU time is the
figure that load does not inflate).

Findings are compared per statement: squawk's line and column are mapped to the statement
that contains them (PostgreSQL's parser, as pgparity splits the file), so a rule firing twice
in one statement counts once for both tools.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgparity.lint.catalog import CATALOG
from pgparity.lint.source import Lines, read_source

SQUAWK_VERSION = "2.70.0"
# squawk's opt-in rules, turned on as pgparity's off-by-default ones are, so both are compared.
SQUAWK_OPT_IN = ("require-table-schema",)
Key = tuple[str, int]  # (file, statement index)


@dataclass(frozen=True)
class ToolRun:
    name: str
    time: Timing
    findings: list[tuple[str, Key]]  # (rule, where)
    linting_seconds: float | None = None  # without the interpreter's start-up


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    files = sorted(args.corpus.glob(args.pattern))
    if not files:
        sys.stderr.write(f"no files match {args.pattern} under {args.corpus}\n")
        return 2
    squawk = _squawk(args.install_squawk)
    statements = {str(f): _statement_spans(f) for f in files}
    ours = _run_pgparity(files, args.runs, args.assume_in_transaction)
    theirs = _run_squawk(squawk, files, args.runs, args.assume_in_transaction, statements)
    print(_report(files, ours, theirs, statements, args.examples))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="directory of migrations")
    parser.add_argument("--pattern", default="*/up.sql", help="glob under --corpus")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool (best kept)")
    parser.add_argument("--assume-in-transaction", action="store_true")
    parser.add_argument("--install-squawk", action="store_true", help="pip install squawk-cli")
    parser.add_argument("--examples", type=int, default=0, help="disagreements shown per rule")
    return parser


def _squawk(install: bool) -> str:
    bin_dir = Path(sys.executable).parent
    if install:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", f"squawk-cli=={SQUAWK_VERSION}"],
            check=True,
        )
    found = shutil.which("squawk", path=str(bin_dir)) or shutil.which("squawk")
    if found is None:
        raise SystemExit("squawk not found: pass --install-squawk (pip install squawk-cli)")
    return found


def _statement_spans(path: Path) -> tuple[Lines, list[tuple[int, int]]]:
    source = read_source(str(path), path.read_text(encoding="utf-8"))
    return source.lines, [(s.start, s.end) for s in source.statements]


@dataclass(frozen=True)
class Timing:
    wall: float  # best of the runs
    cpu: float  # user + system of that command, best of the runs: what load does not inflate


def _timed(command: list[str], runs: int) -> tuple[Timing, str]:
    wall, cpu, output = float("inf"), float("inf"), ""
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = min(wall, time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        cpu = min(cpu, used)
        output = done.stdout
        if done.returncode not in (0, 1):
            raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr[:500]}")
    return Timing(wall, cpu), output


def _run_pgparity(files: list[Path], runs: int, in_transaction: bool) -> ToolRun:
    """Every rule on, the off-by-default ones too, so that each is compared."""
    off = [f'"{e.rule.value}"' for e in CATALOG.values() if not e.enabled]
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "pgparity.toml"
        config.write_text(f"[lint]\nenable = [{', '.join(off)}]\n")
        command = [str(Path(sys.executable).parent / "pgparity"), "lint", "--format", "json"]
        command += ["--config", str(config)]
        command += ["--assume-in-transaction"] if in_transaction else []
        timing, output = _timed([*command, *map(str, files)], runs)
    document = json.loads(output)
    findings = [
        (f["rule"], (f["path"], f["statement"] or 0))
        for f in document["findings"]
        if f["acknowledged"] is None
    ]
    return ToolRun("pgparity", timing, findings, document["summary"]["seconds"])


def _run_squawk(
    squawk: str,
    files: list[Path],
    runs: int,
    in_transaction: bool,
    statements: dict[str, Any],
) -> ToolRun:
    command = [squawk, "--reporter", "json", *(f"--include={rule}" for rule in SQUAWK_OPT_IN)]
    command += ["--assume-in-transaction"] if in_transaction else []
    timing, output = _timed([*command, *map(str, files)], runs)
    findings = []
    for violation in json.loads(output):
        path = violation["file"]
        lines, spans = statements[path]
        # squawk's lines and columns are 0-based.
        offset = lines.offset(violation["line"] + 1, violation["column"] + 1)
        findings.append((violation["rule_name"], (path, _statement_at(spans, offset))))
    return ToolRun(f"squawk {SQUAWK_VERSION}", timing, findings)


def _statement_at(spans: list[tuple[int, int]], offset: int) -> int:
    """The statement containing ``offset``, else the next one (squawk may point at the
    comment or whitespace before a statement), else the last."""
    for index, (_, end) in enumerate(spans, start=1):
        if offset < end:
            return index
    return len(spans)


def _report(
    files: list[Path],
    ours: ToolRun,
    theirs: ToolRun,
    statements: dict[str, Any],
    examples: int,
) -> str:
    total = sum(len(spans) for _, spans in statements.values())
    out = [
        f"Corpus: {len(files)} files, {total} statements.",
        "",
        _timing(ours, theirs, len(files)),
        "",
        _per_rule(ours, theirs),
        "",
        _agreement(ours, theirs, examples),
    ]
    return "\n".join(out)


def _timing(ours: ToolRun, theirs: ToolRun, files: int) -> str:
    rows = [
        "| tool | findings | whole command | CPU (user + sys) | CPU per file | linting only |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in (ours, theirs):
        inside = f"{run.linting_seconds:.2f} s" if run.linting_seconds is not None else "—"
        rows.append(
            f"| {run.name} | {len(run.findings)} | {run.time.wall:.2f} s | "
            f"{run.time.cpu:.2f} s | {run.time.cpu / files * 1000:.2f} ms | {inside} |"
        )
    return "\n".join(rows)


def _per_rule(ours: ToolRun, theirs: ToolRun) -> str:
    mine = Counter(rule for rule, _ in ours.findings)
    other = Counter(rule for rule, _ in theirs.findings)
    rows = ["| pgparity rule | findings | squawk equivalent(s) | squawk findings |"]
    rows.append("|---|---:|---|---:|")
    covered: set[str] = set()
    for entry in CATALOG.values():
        names = [n for n in entry.squawk if n != "syntax-error"] or []
        covered.update(names)
        squawk_count = sum(other[n] for n in names)
        if mine[entry.rule.value] or squawk_count:
            listed = ", ".join(names) or "—"
            rows.append(
                f"| {entry.rule.value} | {mine[entry.rule.value]} | {listed} | "
                f"{squawk_count if names else '—'} |"
            )
    for name, count in sorted(other.items()):
        if name not in covered:
            rows.append(f"| — | — | {name} | {count} |")
    return "\n".join(rows)


def _agreement(ours: ToolRun, theirs: ToolRun, examples: int) -> str:
    """Agreement per group of equivalent rules: squawk's names and pgparity's ids linked by
    the catalogue (``constraint-missing-not-valid`` covers three pgparity rules, and
    ``prefer-bigint`` two squawk rules), compared on the statements each side flags."""
    rows = [
        "| squawk rule(s) | pgparity rule(s) | both | squawk only | pgparity only | agreement |"
    ]
    rows.append("|---|---|---:|---:|---:|---:|")
    shown = []
    for squawk_names, rules in _groups():
        a = {where for name, where in theirs.findings if name in squawk_names}
        b = {where for rule, where in ours.findings if rule in rules}
        both, either = len(a & b), len(a | b)
        if not either:
            continue
        rows.append(
            f"| {', '.join(sorted(squawk_names))} | {', '.join(sorted(rules))} | {both} | "
            f"{len(a - b)} | {len(b - a)} | {both / either:.0%} |"
        )
        label = sorted(rules)[0]
        shown += [f"  {label} squawk only: {k}" for k in sorted(a - b)[:examples]]
        shown += [f"  {label} pgparity only: {k}" for k in sorted(b - a)[:examples]]
    return "\n".join(rows + (["", *shown] if shown else []))


def _groups() -> list[tuple[set[str], set[str]]]:
    """Connected groups of (squawk names, pgparity rules) in the catalogue's mapping."""
    groups: list[tuple[set[str], set[str]]] = []
    for entry in CATALOG.values():
        names = {n for n in entry.squawk if n != "syntax-error"}
        if not names:
            continue
        joined = [g for g in groups if g[0] & names]
        merged = (
            names.union(*(g[0] for g in joined)),
            {entry.rule.value}.union(*(g[1] for g in joined)),
        )
        groups = [g for g in groups if g not in joined] + [merged]
    return groups


if __name__ == "__main__":
    raise SystemExit(main())
