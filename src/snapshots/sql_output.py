"""Query results as `snapshots sql` prints them: a table, CSV or JSON, from PostgreSQL's own
text form of each value (numerics keep every digit; bytea is `\\x...` hex, as psql shows it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

Format = Literal["table", "csv", "json"]

_BOOL = 16
_INTEGERS = {20, 21, 23, 26}  # int8, int2, int4, oid
_NUMBERS = {*_INTEGERS, 700, 701, 1700}  # float4, float8, numeric
_JSON = {114, 3802}  # json, jsonb
_NOT_JSON_NUMBERS = {"NaN", "Infinity", "-Infinity"}


@dataclass(frozen=True)
class ResultSet:
    """What one statement returned: its columns and rows as text (None for NULL), and its
    command tag (`SELECT 3`, `DELETE 2`)."""

    columns: Sequence[str]
    types: Sequence[int]  # PostgreSQL type OIDs, one per column
    rows: Sequence[Sequence[str | None]]
    status: str

    @property
    def has_rows(self) -> bool:
        """Whether the statement returns rows (a SELECT of nothing does; a DELETE does not)."""
        return bool(self.columns)


def print_result(result: ResultSet, fmt: Format, out: TextIO, console: Console) -> None:
    """Print one statement's result; a statement without rows prints its command tag (to
    stderr for CSV and JSON, so their output stays parseable)."""
    if not result.has_rows:
        if fmt == "table":
            console.print(result.status, highlight=False, markup=False)
        return
    if fmt == "csv":
        out.write(to_csv(result))
    elif fmt == "json":
        out.write(to_json(result) + "\n")
    else:
        console.print(to_table(result))
        count = len(result.rows)
        console.print(f"({count} row{'' if count == 1 else 's'})", highlight=False)


def to_table(result: ResultSet) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, oid in zip(result.columns, result.types, strict=True):
        table.add_column(Text(name), justify="right" if oid in _NUMBERS else "left")
    for row in result.rows:
        table.add_row(*(Text("" if value is None else value) for value in row))
    return table


def to_csv(result: ResultSet) -> str:
    """RFC 4180 with a header line; NULL is an empty field and an empty string is `""`, as
    psql --csv writes them."""
    lines = [",".join(_csv_field(name) for name in result.columns)]
    lines += [",".join("" if v is None else _csv_field(v) for v in row) for row in result.rows]
    return "\r\n".join(lines) + "\r\n"


def _csv_field(value: str) -> str:
    if value == "" or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def to_json(result: ResultSet) -> str:
    """A JSON array of one object per row: numbers as JSON numbers with every digit, booleans,
    json/jsonb as nested JSON, NULL as null, anything else as its text."""
    names = [json.dumps(name) for name in result.columns]
    rows = (
        "{"
        + ", ".join(
            f"{name}: {_json_value(value, oid)}"
            for name, value, oid in zip(names, row, result.types, strict=True)
        )
        + "}"
        for row in result.rows
    )
    return "[" + ",\n ".join(rows) + "]"


def _json_value(value: str | None, oid: int) -> str:
    if value is None:
        return "null"
    if oid == _BOOL:
        return "true" if value == "t" else "false"
    if oid in _NUMBERS and value not in _NOT_JSON_NUMBERS:
        return value
    if oid in _JSON:
        return value
    return json.dumps(value, ensure_ascii=False)
