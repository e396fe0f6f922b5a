"""Frozen dataclasses ⇄ JSON, driven by type hints: one codec for every model.

Two styles. Kubernetes objects and the files people write (``KUBERNETES``): a field
``clone_ref: LocalObjectRef`` is ``cloneRef``, and fields that are None are left out. The
validation report (``REPORT``, version 1 of its contract): names as written (``digest_before``)
and None written as ``null``. Either way ``field(metadata=…)`` can say more about one field:

- ``json``: its name in JSON, when the style's is not it;
- ``round``: a float written rounded to that many decimals;
- ``omit_none``: left out when None even where the style writes null;
- ``inline``: a nested dataclass whose members are written into this object (None: none);
- ``skip``: never written or read (it must have a default).

A class may order its members in JSON with ``JSON_ORDER`` (field names), for contracts whose
order predates the class. ``decode`` builds a model from a document and raises ``SpecError``
naming the dotted path of the first field that does not fit (``spec.budgets.
maxBlockedSessions: must be an integer``). The same walk lets a test compare every model with
its CRD schema field by field.

Objects read back from the API server, and reports, are decoded leniently (``API``): the server
has already pruned unknown fields, and a report may carry fields a later version added. Files
people write are decoded strictly (``FILE``): a misspelt key is an error naming the closest
valid one, because an ignored ``usesIndx`` is an expectation that silently never runs. Numbers
are finite, and integers fit PostgreSQL's bigint, in both.
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

# Field metadata (combine with ``|``).
INLINE: Mapping[str, Any] = {"inline": True}
SKIP: Mapping[str, Any] = {"skip": True}
OMIT_NONE: Mapping[str, Any] = {"omit_none": True}


def rounded(digits: int) -> Mapping[str, Any]:
    return {"round": digits}


@dataclass(frozen=True)
class Style:
    """How a tree of models looks as JSON."""

    camel_case: bool = True  # field names: camelCase (Kubernetes), or as written
    write_nulls: bool = False  # None: left out (Kubernetes), or written as null


KUBERNETES = Style()
REPORT = Style(camel_case=False, write_nulls=True)


@dataclass(frozen=True)
class Rules:
    """How forgiving ``decode`` is about keys, and which style it reads."""

    unknown_keys_are_errors: bool = False
    snake_case: bool = False  # ``uses_index`` accepted for ``usesIndex``
    style: Style = KUBERNETES


API = Rules()
FILE = Rules(unknown_keys_are_errors=True, snake_case=True)
REPORT_RULES = Rules(style=REPORT)


def json_name(field: dataclasses.Field[Any], style: Style = KUBERNETES) -> str:
    """The JSON name of a dataclass field: metadata ``json``, else as the style writes it."""
    explicit = field.metadata.get("json")
    if explicit:
        return str(explicit)
    return _camel(field.name) if style.camel_case else field.name


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


@cache
def _ordered(cls: Any) -> tuple[dataclasses.Field[Any], ...]:
    """The fields as JSON writes them: ``JSON_ORDER`` first, the others in declared order."""
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("skip")}
    first = [fields.pop(name) for name in getattr(cls, "JSON_ORDER", ())]
    return (*first, *fields.values())


def _inline_type(cls: Any, field: dataclasses.Field[Any]) -> Any:
    hint = field_types(cls)[field.name]
    return optional_inner(hint) or hint


@cache
def json_names(cls: Any, style: Style = KUBERNETES) -> tuple[str, ...]:
    """Every key an object of ``cls`` may have, inlined members' included."""
    names: list[str] = []
    for field in _ordered(cls):
        if field.metadata.get("inline"):
            names += json_names(_inline_type(cls, field), style)
        else:
            names.append(json_name(field, style))
    return tuple(names)


# -- decoding -----------------------------------------------------------------------------


def decode(cls: type[T], doc: Any, path: str = "", rules: Rules = API) -> T:
    """Build ``cls`` from ``doc``; what happens to unknown keys is up to ``rules``."""
    if not isinstance(doc, Mapping):
        raise SpecError(path or "(document)", "must be an object")
    model: Any = cls
    given = _keys_by_name(model, doc, path, rules)
    values: dict[str, Any] = {}
    for field in _ordered(model):
        if field.metadata.get("inline"):
            found = _decode_inline(model, field, doc, given, path, rules)
        else:
            found = _decode_member(model, field, doc, given, path, rules)
        if found is not _ABSENT:
            values[field.name] = found
    instance = cls(**values)
    for relative, problem in getattr(instance, "problems", lambda: [])():
        where = ".".join(part for part in (path, relative) if part)
        raise SpecError(where, problem)
    return instance


_ABSENT = object()


def _decode_member(
    model: Any,
    field: dataclasses.Field[Any],
    doc: Mapping[Any, Any],
    given: Mapping[str, Any],
    path: str,
    rules: Rules,
) -> Any:
    name = json_name(field, rules.style)
    if name not in given or doc[given[name]] is None:
        # A style that writes None as null reads null back as None (a default may not be).
        nullable = rules.style.write_nulls and optional_inner(field_types(model)[field.name])
        if nullable and (name in given or _required(field)):
            return None
        if not _required(field):
            return _ABSENT
        raise SpecError(f"{path}.{name}" if path else name, "is required")
    at = f"{path}.{given[name]}" if path else str(given[name])
    return _decode_value(field_types(model)[field.name], doc[given[name]], at, rules)


def _decode_inline(
    model: Any,
    field: dataclasses.Field[Any],
    doc: Mapping[Any, Any],
    given: Mapping[str, Any],
    path: str,
    rules: Rules,
) -> Any:
    """An inlined member: present when any of its keys is."""
    inner = _inline_type(model, field)
    keys = [given[name] for name in json_names(inner, rules.style) if name in given]
    if not keys and not _required(field):
        return _ABSENT
    return decode(inner, {key: doc[key] for key in keys}, path, rules)


def _keys_by_name(model: Any, doc: Mapping[Any, Any], path: str, rules: Rules) -> dict[str, Any]:
    """The document's keys by the JSON name they stand for; unknown keys refused if strict."""
    names = json_names(model, rules.style)
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
            raise SpecError(at, f"unknown key; {_suggestion(name, list(names))}")
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
    if origin in (tuple, frozenset):
        if not isinstance(value, list):
            raise SpecError(at, "must be a list")
        item = get_args(hint)[0]
        return origin(_decode_value(item, v, f"{at}[{i}]", rules) for i, v in enumerate(value))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise SpecError(at, "must be an object")
        item = get_args(hint)[1]
        return {str(k): _decode_value(item, v, f"{at}.{k}", rules) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return decode(hint, value, at, rules)  # type: ignore[arg-type]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _decode_enum(hint, value, at)
    return _decode_scalar(hint, value, at)


def _decode_enum(hint: type[Enum], value: Any, at: str) -> Enum:
    try:
        return hint(value)
    except ValueError as exc:
        allowed = ", ".join(str(m.value) for m in hint)
        raise SpecError(at, f"must be one of {allowed}") from exc


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
        return _decode_float(value, at)
    if hint is str:
        if not isinstance(value, str):
            raise SpecError(at, "must be a string")
        return value
    if hint is Any:
        return value
    raise TypeError(f"unsupported model type {hint!r} at {at}")


def _decode_float(value: Any, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(at, "must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        number = math.inf
    if not math.isfinite(number):
        raise SpecError(at, "must be a finite number")
    return number


def _in_int64(value: int, at: str) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise SpecError(at, "must fit in 64 bits (PostgreSQL's bigint)")
    return value


# -- encoding -----------------------------------------------------------------------------


def encode(instance: Any, style: Style = KUBERNETES) -> Any:
    """The JSON document of a model (enums by value, sets sorted)."""
    if dataclasses.is_dataclass(instance) and not isinstance(instance, type):
        return _encode_object(instance, style)
    if isinstance(instance, Enum):
        return instance.value
    if isinstance(instance, frozenset | set):
        return sorted(encode(v, style) for v in instance)
    if isinstance(instance, tuple | list):
        return [encode(v, style) for v in instance]
    if isinstance(instance, Mapping):
        return {str(k): encode(v, style) for k, v in instance.items()}
    return instance


def _encode_object(instance: Any, style: Style) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cls: Any = type(instance)
    for field in _ordered(cls):
        value = getattr(instance, field.name)
        if field.metadata.get("inline"):
            out.update(_encode_object(value, style) if value is not None else {})
        elif value is not None or (style.write_nulls and not field.metadata.get("omit_none")):
            out[json_name(field, style)] = _encode_member(field, value, style)
    return out


def _encode_member(field: dataclasses.Field[Any], value: Any, style: Style) -> Any:
    digits = field.metadata.get("round")
    if digits is not None and isinstance(value, int | float) and not isinstance(value, bool):
        return round(value, digits)
    return encode(value, style)
