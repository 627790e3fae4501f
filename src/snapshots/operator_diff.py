"""What changed between two versions of a payload, in words an operator reads: items named by
a human key (login, key, email, name, id), and for changed items which fields moved from what to what.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_ITEMS = 20  # lines per kind (added, removed, changed) and version
MAX_FIELDS = 6  # changed fields named per item
MAX_VALUE = 60  # characters of a value shown
LABEL_FIELDS = ("login", "key", "email", "name", "id")  # what a person recognises first
MATCH_FIELDS = ("id", "key", "login", "email", "name")  # what stays put across versions first
_MISSING: Any = object()
_PLAIN = re.compile(r"^[\w.@:/+-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class FieldChange:
    """One leaf of an item (a dotted path through nested objects) that differs."""

    path: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.path} {_value(self.before)} -> {_value(self.after)}"


@dataclass(frozen=True)
class ItemChange:
    """An item present in both versions whose content differs."""

    label: str
    fields: tuple[FieldChange, ...]

    def __str__(self) -> str:
        shown = ", ".join(str(f) for f in self.fields[:MAX_FIELDS])
        if len(self.fields) > MAX_FIELDS:
            shown += f" and {len(self.fields) - MAX_FIELDS} more fields"
        return f"{self.label}: {shown}"


@dataclass(frozen=True)
class PayloadDiff:
    """Items added, removed and changed between two list payloads (labels sorted), or the fields
    changed between two object payloads."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[ItemChange, ...] = ()
    fields: tuple[FieldChange, ...] = ()
    reordered: bool = False  # the same items in another order

    def lines(self) -> list[str]:
        """A summary line, then `+ label`, `- label`, `~ label: field a -> b`, each kind bounded."""
        if self.fields:
            lines = [f"{len(self.fields)} field{'s' if len(self.fields) > 1 else ''} changed"]
            lines += [f"~ {change}" for change in self.fields[:MAX_ITEMS]]
            if len(self.fields) > MAX_ITEMS:
                lines.append(f"~ … and {len(self.fields) - MAX_ITEMS} more fields")
            return lines
        counts = [
            f"{len(items)} {kind}"
            for kind, items in (
                ("added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
            )
            if items
        ]
        if not counts:
            return ["the same items, in another order"] if self.reordered else []
        lines = [", ".join(counts)]
        for mark, kind, entries in (
            ("+", "added", list(self.added)),
            ("-", "removed", list(self.removed)),
            ("~", "changed", [str(c) for c in self.changed]),
        ):
            lines += [f"{mark} {entry}" for entry in entries[:MAX_ITEMS]]
            if len(entries) > MAX_ITEMS:
                lines.append(f"{mark} … and {len(entries) - MAX_ITEMS} more {kind}")
        return lines


def diff(older: Any, newer: Any) -> PayloadDiff:
    """Compare two payloads: lists item by item, objects field by field."""
    if isinstance(older, list) and isinstance(newer, list):
        return _diff_lists(older, newer)
    if isinstance(older, dict) and isinstance(newer, dict):
        return PayloadDiff(fields=_field_changes(older, newer))
    if older == newer:
        return PayloadDiff()
    return PayloadDiff(fields=(FieldChange("payload", older, newer),))


def _diff_lists(older: list[Any], newer: list[Any]) -> PayloadDiff:
    field = _match_field(older, newer)
    before = {_identity(item, field): item for item in older}
    after = {_identity(item, field): item for item in newer}
    labels = _labels(older, field) | _labels(newer, field)
    added = sorted(labels[k] for k in after.keys() - before.keys())
    removed = sorted(labels[k] for k in before.keys() - after.keys())
    changed = sorted(
        (
            ItemChange(labels[k], _field_changes(before[k], after[k]))
            for k in before.keys() & after.keys()
            if before[k] != after[k]
        ),
        key=lambda change: change.label,
    )
    return PayloadDiff(tuple(added), tuple(removed), tuple(changed), reordered=older != newer)


def _scalar(item: Any, field: str) -> str | None:
    """The item's `field` as text, if it is a non-empty string or a number."""
    if not isinstance(item, Mapping):
        return None
    value = item.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        return None
    return str(value)


def _match_field(older: list[Any], newer: list[Any]) -> str | None:
    """The first field every item of both versions has, unique within each version."""
    for field in MATCH_FIELDS:
        ok = True
        for items in (older, newer):
            values = [_scalar(item, field) for item in items]
            if None in values or len(set(values)) != len(values):
                ok = False
                break
        if ok:
            return field
    return None


def _identity(item: Any, field: str | None) -> str:
    value = _scalar(item, field) if field else None
    return value if value is not None else json.dumps(item, sort_keys=True, default=str)


def _labels(items: list[Any], field: str | None) -> dict[str, str]:
    """Identity -> the item's name for people; the identity is added where names repeat."""
    names = {}
    for item in items:
        name = next((v for f in LABEL_FIELDS if (v := _scalar(item, f)) is not None), None)
        names[_identity(item, field)] = name
    repeated = Counter(names.values())
    labels = {}
    for identity, name in names.items():
        if name is None:
            labels[identity] = _clip(identity)
        elif repeated[name] > 1 and field is not None:
            labels[identity] = f"{printable(name)} ({field} {printable(identity)})"
        else:
            labels[identity] = printable(name)
    return labels


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects flattened to dotted paths; lists and scalars are leaves."""
    if isinstance(value, Mapping) and value:
        leaves: dict[str, Any] = {}
        for name, inner in value.items():
            leaves |= _leaves(inner, f"{prefix}.{name}" if prefix else str(name))
        return leaves
    return {prefix or "item": value}


def _field_changes(before: Any, after: Any) -> tuple[FieldChange, ...]:
    old, new = _leaves(before), _leaves(after)
    return tuple(
        FieldChange(printable(path), old.get(path, _MISSING), new.get(path, _MISSING))
        for path in sorted(old.keys() | new.keys())
        if old.get(path, _MISSING) != new.get(path, _MISSING)
    )


def _value(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if isinstance(value, str) and _PLAIN.fullmatch(value):
        return _clip(value)
    return _clip(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


def printable(text: str) -> str:
    """Control characters (an upstream's data could move a terminal's cursor) made visible."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _clip(text: str) -> str:
    text = printable(text)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
