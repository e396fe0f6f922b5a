"""Helpers every command shares: exit codes, progress on stderr, checked inputs and outputs."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from pgparity.errors import UsageError
from pgparity.inputs import load_yaml_file
from pgparity.models.progress import Progress
from pgparity.redaction import sanitize

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_DRIFT = 3
EXIT_DATABASE = 4
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (``pgparity: error: …``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"pgparity: error: {sanitize(message)} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def int_in_range(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def number_in_range(low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type``: a finite number from ``low`` to ``high`` (no nan, no inf)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text.strip()} is not between {low:g} and {high:g}")
        return value

    return parse


def progress_printer(quiet: bool) -> Progress:
    def emit(message: str) -> None:
        if not quiet:
            sys.stderr.write(f"pgparity: {sanitize(message)}\n")
            sys.stderr.flush()

    return emit


def check_output_file(path: Path, flag: str) -> None:
    """Refuse, before any work, an output that could not be written at the end: a directory, a
    device or FIFO (renaming over it would replace it), a missing or read-only directory."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory")
    if path.exists() and not path.is_file():
        raise UsageError(f"{flag} {path} exists and is not a regular file")
    _check_writable_directory(path, flag)


def check_output_directory(path: Path, flag: str) -> None:
    """An output directory: absent or empty, in a directory that exists and can be written."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        raise UsageError(f"{flag} {path} exists and is not empty")
    _check_writable_directory(path, flag)


def _check_writable_directory(path: Path, flag: str) -> None:
    directory = path.parent
    if not directory.is_dir():
        raise UsageError(f"{flag} {path}: directory {directory} does not exist")
    # Creating a file is the only honest test (read-only mounts, ACLs, root's bypass of modes).
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=f".{path.name[:64]}.", suffix=".probe")
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write in {directory}: {exc.strerror}") from exc
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename: never a half-written file."""
    directory = path.parent
    if not directory.is_dir():
        raise UsageError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name[:64]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_yaml(path: Path, flag: str) -> Any:
    """A YAML document from ``path``; any problem is one line naming the flag and the file."""
    return load_yaml_file(path, flag)
