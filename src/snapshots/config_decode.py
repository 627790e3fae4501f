"""TOML tables into settings structs, with msgspec's validation errors rewritten as one line that
names the file, the dotted key and what to write instead."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from snapshots.config_types import PATTERN_HINTS, BudgetLimit, Duration, Secret
from snapshots.errors import ConfigError

T = TypeVar("T")

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<name>[^`]+)`")
_EXPECTED = re.compile(r"Expected `(?P<type>[\w |]+)`(?:, got `(?P<got>\w+)`)?")
_BOUND = re.compile(r"Expected `(?P<type>\w+)` (?P<op>[<>]=?) (?P<value>\S+)")
_NOUNS = {
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "array": "a list of non-empty strings",
    "object": "a table",
}
_TOML_TYPES = {"str": "string", "int": "integer", "float": "float", "bool": "boolean"}
_PY_TOML_TYPES = {**_TOML_TYPES, "list": "array", "dict": "table"}
TOP_LEVEL = "top level"  # the `where` of the file's own keys, which are named bare


def toml_type(value: object) -> str:
    """A TOML value's type in TOML's words (integer, not int)."""
    name = type(value).__name__
    return _PY_TOML_TYPES.get(name, name)


def dec_hook(kind: type, value: object) -> object:
    """Build the value types of jobs.toml from their TOML strings."""
    if kind is Duration:
        return Duration.decode(value)
    if kind is BudgetLimit:
        return BudgetLimit.decode(value)
    if kind is Secret:
        if not isinstance(value, str):
            raise TypeError(f"must be a string, got {type(value).__name__}")
        return Secret(value)
    raise NotImplementedError(kind)


def field_names(kind: type) -> list[str]:
    """The TOML keys a settings struct accepts."""
    return [f for f in getattr(kind, "__struct_fields__", ()) if f != "kind"]


def decode(
    raw: object,
    kind: Any,
    *,
    file: Path,
    where: str,
    others: Iterable[tuple[str, type]] = (),
    shape: type | None = None,
    common: Iterable[str] = (),
) -> Any:
    """`raw` as `kind`, or ConfigError "file: where.key: problem".

    `others` are (name, struct) pairs of sibling kinds: a key one of them accepts is reported
    as "not a setting of <this one>" rather than as an unknown key. `shape`: the struct that
    errors are explained by, when `kind` is a union of them. `common`: keys the same table
    accepts besides `kind`'s (decoded elsewhere), listed among the known keys."""
    try:
        return msgspec.convert(raw, kind, dec_hook=dec_hook, strict=True)
    except msgspec.ValidationError as exc:
        raise _config_error(
            str(exc), shape or kind, file, where, list(others), set(common)
        ) from None


def fail(file: Path, where: str, what: str) -> ConfigError:
    return ConfigError(f"{file}: {where}: {what}")


def _config_error(
    message: str,
    kind: Any,
    file: Path,
    where: str,
    others: list[tuple[str, type]],
    common: set[str],
) -> ConfigError:
    match = _AT.match(message)
    assert match is not None
    what, path = match.group("what"), match.group("path") or ""
    dotted = _dotted(where, path)
    unknown = _UNKNOWN.match(what)
    if unknown:
        name = unknown.group("name")
        own = _struct_at(kind, path)
        if any(name in field_names(other) for _, other in others):
            mine = ", ".join(sorted(field_names(own) if own else ())) or "none"
            label = where.split(".", 1)[-1].strip('"')
            return fail(
                file, f"{dotted}.{name}", f"not a setting of {label} (its own settings: {mine})"
            )
        top = common if not path else set()
        known = ", ".join(sorted(top.union(field_names(own) if own else ()))) or "none"
        return fail(file, dotted, f"unknown key {name!r} (known keys: {known})")
    if what.startswith("Invalid value") or what.startswith("Invalid enum value"):
        choices = _choices(kind, path)
        return fail(file, dotted, f"must be one of {choices}" if choices else what)
    bound = _BOUND.match(what)
    if bound:
        low, high = _bounds(kind, path)
        noun = "a whole number" if bound.group("type") == "int" else "a number"
        if low is not None and high is not None:
            joiner = ("from", "to") if noun == "a whole number" else ("between", "and")
            return fail(file, dotted, f"must be {noun} {joiner[0]} {low:g} {joiner[1]} {high:g}")
        return fail(file, dotted, f"must be {noun} {bound.group('op')} {bound.group('value')}")
    if "length >= 1" in what:
        return fail(
            file,
            _dotted(where, re.sub(r"\[\d+\]$", "", path)),
            "must be a list of non-empty strings",
        )
    if path.endswith("[...]"):  # a value of a table of strings (headers, params)
        return fail(file, _dotted(where, path[: -len("[...]")]), "must be a table of strings")
    if "matching regex" in what:
        for pattern, hint in PATTERN_HINTS.items():
            if repr(pattern) in what:
                return fail(file, dotted, hint)
        return fail(file, dotted, "has the wrong format")
    expected = _EXPECTED.match(what)
    if expected:
        choices = _choices(kind, path)
        types = [t for t in expected.group("type").split(" | ") if t != "null"]
        if choices:
            noun = f"one of {choices}"
        elif re.search(r"\[\d+\]$", path) and types == ["str"]:
            dotted, noun = _dotted(where, path), "a list of non-empty strings"
        else:
            noun = " or ".join(_NOUNS.get(t, t) for t in types) or "unset"
        got = expected.group("got")
        return fail(
            file, dotted, f"must be {noun}" + (f", got {_TOML_TYPES.get(got, got)}" if got else "")
        )
    if what.startswith("Object missing required field"):
        name = what.split("`")[1]
        return fail(file, f"{dotted}.{name}", "required")
    return fail(file, dotted, what)


def _dotted(where: str, path: str) -> str:
    keys = re.sub(r"\[\d+\]", "", path).strip(".")
    if where == TOP_LEVEL and keys:
        return keys
    return f"{where}.{keys}" if keys else where


def _walk(kind: Any, path: str) -> tuple[Any, str | None]:
    """The struct holding the last key of `path`, and that key."""
    parts = [p for p in re.sub(r"\[\d+\]", "", path).split(".") if p]
    current = kind
    for part in parts[:-1]:
        current = _unwrap(typing.get_type_hints(current, include_extras=True).get(part))
    return current, (parts[-1] if parts else None)


def _unwrap(annotation: Any) -> Any:
    """The struct inside Optional[...] / Annotated[...], if any."""
    for arg in typing.get_args(annotation) or (annotation,):
        inner = typing.get_args(arg)[0] if typing.get_origin(arg) is typing.Annotated else arg
        if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
            return inner
    return annotation


def _struct_at(kind: Any, path: str) -> Any:
    parts = [p for p in re.sub(r"\[\d+\]", "", path).split(".") if p]
    current = _unwrap(kind)
    for part in parts:
        current = _unwrap(typing.get_type_hints(current, include_extras=True).get(part))
    return current if isinstance(current, type) else None


def _annotation(kind: Any, path: str) -> Any:
    owner, key = _walk(_unwrap(kind), path)
    if key is None or not isinstance(owner, type):
        return None
    return typing.get_type_hints(owner, include_extras=True).get(key)


def _bounds(kind: Any, path: str) -> tuple[float | None, float | None]:
    annotation = _annotation(kind, path)
    for arg in [annotation, *typing.get_args(annotation)]:
        if typing.get_origin(arg) is typing.Annotated:
            for meta in typing.get_args(arg)[1:]:
                if isinstance(meta, msgspec.Meta):
                    low = meta.ge if meta.ge is not None else meta.gt
                    high = meta.le if meta.le is not None else meta.lt
                    return low, high
    return None, None


def _choices(kind: Any, path: str) -> str:
    if path.endswith(".kind") or path == ".kind":
        return ""
    annotation = _annotation(kind, path)
    values: list[str] = []
    for arg in [annotation, *typing.get_args(annotation)]:
        if typing.get_origin(arg) is typing.Literal:
            values.extend(str(v) for v in typing.get_args(arg))
    return ", ".join(sorted(values))
