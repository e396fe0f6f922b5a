"""Frozen dataclasses ⇄ Kubernetes-style JSON (camelCase), driven by type hints.

A model field ``clone_ref: LocalObjectRef`` is ``cloneRef`` in JSON (or the name given by
``field(metadata={"json": …})``). ``decode`` builds a model from a document and raises
``SpecError`` naming the dotted path of the first field that does not fit (``spec.budgets.
maxBlockedSessions: must be an integer``); ``encode`` writes a document, leaving out fields that
are None. The same walk lets a test compare every model with its CRD schema field by field.

Objects read back from the API server are decoded leniently (``API``): the server has already
pruned unknown fields. Files people write are decoded strictly (``FILE``): a misspelt key is an
error naming the closest valid one, because an ignored ``usesIndx`` is an expectation that
silently never runs. Numbers are finite, and integers fit PostgreSQL's bigint, in both.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from pgparity.errors import SpecError

T = TypeVar("T")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Rules:
    """How forgiving ``decode`` is about keys."""

    unknown_keys_are_errors: bool = False
    snake_case: bool = False  # ``uses_index`` accepted for ``usesIndex``


API = Rules()
FILE = Rules(unknown_keys_are_errors=True, snake_case=True)


def json_name(field: dataclasses.Field[Any]) -> str:
    """The JSON name of a dataclass field: metadata ``json`` or the camelCase of its name."""
    explicit = field.metadata.get("json")
    if explicit:
        return str(explicit)
    head, *rest = field.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@cache
def field_types(cls: Any) -> dict[str, Any]:
    """Resolved type hints of a dataclass (``from __future__ import annotations`` safe)."""
    return get_type_hints(cls)


def optional_inner(hint: Any) -> Any | None:
    """``X`` for ``X | None``, else None."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(get_args(hint)) == 2:
            return args[0]
    return None


def decode(cls: type[T], doc: Any, path: str = "", rules: Rules = API) -> T:
    """Build ``cls`` from ``doc``; what happens to unknown keys is up to ``rules``."""
    if not isinstance(doc, Mapping):
        raise SpecError(path or "(document)", "must be an object")
    model: Any = cls
    hints = field_types(model)
    given = _keys_by_name(model, doc, path, rules)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(model):
        name = json_name(field)
        at = f"{path}.{name}" if path else name
        if name not in given or doc[given[name]] is None:
            if _required(field):
                raise SpecError(at, "is required")
            continue
        at = f"{path}.{given[name]}" if path else str(given[name])
        values[field.name] = _decode_value(hints[field.name], doc[given[name]], at, rules)
    instance = cls(**values)
    for relative, problem in getattr(instance, "problems", lambda: [])():
        where = ".".join(part for part in (path, relative) if part)
        raise SpecError(where, problem)
    return instance


def _keys_by_name(model: Any, doc: Mapping[Any, Any], path: str, rules: Rules) -> dict[str, Any]:
    """The document's keys by the JSON name they stand for; unknown keys refused if strict."""
    names = [json_name(f) for f in dataclasses.fields(model)]
    given: dict[str, Any] = {}
    for key in doc:
        at = f"{path}.{key}" if path else str(key)
        if not isinstance(key, str):
            if rules.unknown_keys_are_errors:
                raise SpecError(at, "keys must be strings")
            continue
        name = _camel(key) if rules.snake_case else key
        if name in given:
            raise SpecError(at, f"is given twice (also as {given[name]})")
        if name not in names and rules.unknown_keys_are_errors:
            raise SpecError(at, f"unknown key; {_suggestion(name, names)}")
        given[name] = key
    return given


def _suggestion(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return f"expected one of {', '.join(names)}"


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _decode_value(hint: Any, value: Any, at: str, rules: Rules) -> Any:
    inner = optional_inner(hint)
    if inner is not None:
        return None if value is None else _decode_value(inner, value, at, rules)
    origin = get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise SpecError(at, "must be a list")
        item = get_args(hint)[0]
        return tuple(_decode_value(item, v, f"{at}[{i}]", rules) for i, v in enumerate(value))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise SpecError(at, "must be an object")
        item = get_args(hint)[1]
        return {str(k): _decode_value(item, v, f"{at}.{k}", rules) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return decode(hint, value, at, rules)  # type: ignore[arg-type]
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in hint)
            raise SpecError(at, f"must be one of {allowed}") from None
    return _decode_scalar(hint, value, at)


def _decode_scalar(hint: Any, value: Any, at: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise SpecError(at, "must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(at, "must be an integer")
        return _in_int64(value, at)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(at, "must be a number")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            number = math.inf
        if not math.isfinite(number):
            raise SpecError(at, "must be a finite number")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise SpecError(at, "must be a string")
        return value
    if hint is Any:
        return value
    raise TypeError(f"unsupported model type {hint!r} at {at}")


def _in_int64(value: int, at: str) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise SpecError(at, "must fit in 64 bits (PostgreSQL's bigint)")
    return value


def encode(instance: Any) -> Any:
    """The JSON document of a model (None fields left out, enums by value)."""
    if dataclasses.is_dataclass(instance) and not isinstance(instance, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(instance):
            value = getattr(instance, field.name)
            if value is not None:
                out[json_name(field)] = encode(value)
        return out
    if isinstance(instance, Enum):
        return instance.value
    if isinstance(instance, tuple | list):
        return [encode(v) for v in instance]
    if isinstance(instance, Mapping):
        return {str(k): encode(v) for k, v in instance.items()}
    return instance
