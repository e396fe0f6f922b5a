"""Frozen dataclasses ⇄ Kubernetes-style JSON (camelCase), driven by type hints.

A model field ``clone_ref: LocalObjectRef`` is ``cloneRef`` in JSON (or the name given by
``field(metadata={"json": …})``). ``decode`` builds a model from a document and raises
``SpecError`` naming the dotted path of the first field that does not fit (``spec.budgets.
maxBlockedSessions: must be an integer``); ``encode`` writes a document, leaving out fields that
are None. The same walk lets a test compare every model with its CRD schema field by field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from pgparity.errors import SpecError

T = TypeVar("T")


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


def decode(cls: type[T], doc: Any, path: str = "") -> T:
    """Build ``cls`` from ``doc``; unknown keys are ignored (the API server prunes them)."""
    if not isinstance(doc, Mapping):
        raise SpecError(path or "(document)", "must be an object")
    model: Any = cls
    hints = field_types(model)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(model):
        name = json_name(field)
        at = f"{path}.{name}" if path else name
        if name not in doc or doc[name] is None:
            if _required(field):
                raise SpecError(at, "is required")
            continue
        values[field.name] = _decode_value(hints[field.name], doc[name], at)
    instance = cls(**values)
    for relative, problem in getattr(instance, "problems", lambda: [])():
        where = ".".join(part for part in (path, relative) if part)
        raise SpecError(where, problem)
    return instance


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _decode_value(hint: Any, value: Any, at: str) -> Any:
    inner = optional_inner(hint)
    if inner is not None:
        return None if value is None else _decode_value(inner, value, at)
    origin = get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise SpecError(at, "must be a list")
        item = get_args(hint)[0]
        return tuple(_decode_value(item, v, f"{at}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise SpecError(at, "must be an object")
        item = get_args(hint)[1]
        return {str(k): _decode_value(item, v, f"{at}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return decode(hint, value, at)  # type: ignore[arg-type]
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
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(at, "must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SpecError(at, "must be a string")
        return value
    if hint is Any:
        return value
    raise TypeError(f"unsupported model type {hint!r} at {at}")


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
