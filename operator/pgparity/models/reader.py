"""Typed reading of JSON-like documents that names the dotted path of the first bad field."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from pgparity.errors import SpecError

E = TypeVar("E", bound=StrEnum)


class Reader:
    """Typed access to a JSON-like mapping that reports the dotted path of a bad field."""

    def __init__(self, doc: Any, path: str) -> None:
        if not isinstance(doc, Mapping):
            raise SpecError(path or "(document)", "must be an object")
        self._doc = doc
        self._path = path

    def _at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def get(self, key: str, default: Any = None) -> Any:
        return self._doc.get(key, default)

    def _required(self, key: str) -> Any:
        if key not in self._doc:
            raise SpecError(self._at(key), "is required")
        return self._doc[key]

    def string(self, key: str) -> str:
        value = self._required(key)
        if not isinstance(value, str):
            raise SpecError(self._at(key), "must be a string")
        return value

    def opt_string(self, key: str) -> str | None:
        return None if self._doc.get(key) is None else self.string(key)

    def integer(self, key: str) -> int:
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(self._at(key), "must be an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self._doc.get(key) is None else self.integer(key)

    def opt_float(self, key: str) -> float | None:
        value = self._doc.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(self._at(key), "must be a number")
        return float(value)

    def enum(self, key: str, kind: type[E]) -> E:
        value = self.string(key)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise SpecError(self._at(key), f"must be one of {allowed}") from None

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self._doc.get(key) or {}
        if not isinstance(value, Mapping):
            raise SpecError(self._at(key), "must be an object")
        return value

    def array(self, key: str) -> list[Any]:
        value = self._doc.get(key) or []
        if not isinstance(value, list):
            raise SpecError(self._at(key), "must be a list")
        return value

    def child(self, key: str) -> Reader:
        return Reader(self._required(key), self._at(key))

    def children(self, key: str) -> list[Reader]:
        return [Reader(item, f"{self._at(key)}[{i}]") for i, item in enumerate(self.array(key))]
