"""How a long operation says what it is doing: one line at a time, to whoever listens."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A Progress that tells no one."""
