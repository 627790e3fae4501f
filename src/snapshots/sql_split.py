"""Split SQL text into statements at top-level semicolons, as psql does, so `snapshots sql` can
run one statement per protocol message (which is how read-only mode stays read-only)."""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(text: str) -> tuple[list[str], str]:
    """The complete statements in `text` (each without its `;`, blank ones dropped) and the
    unfinished rest. Quotes ('...', E'...', "..."), dollar quotes ($tag$...$tag$), `--` and
    nested `/* */` comments are skipped, so a `;` inside them does not end a statement.

    A wrong split can only produce text PostgreSQL rejects: each piece is sent with the
    extended protocol, which refuses more than one statement."""
    statements: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == ";":
            piece = text[start:i].strip()
            if piece:
                statements.append(piece)
            start = i + 1
            i += 1
        elif char == "'":
            escapes = i > 0 and text[i - 1] in "eE" and (i == 1 or not _word(text[i - 2]))
            i = _end_of_quoted(text, i + 1, "'", backslash=escapes)
        elif char == '"':
            i = _end_of_quoted(text, i + 1, '"', backslash=False)
        elif text.startswith("--", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif text.startswith("/*", i):
            i = _end_of_comment(text, i)
        elif char == "$" and (i == 0 or not _word(text[i - 1])):
            match = _DOLLAR_TAG.match(text, i)
            if match:
                close = text.find(match.group(0), match.end())
                i = n if close < 0 else close + len(match.group(0))
            else:
                i += 1
        else:
            i += 1
    return statements, text[start:]


def _word(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _end_of_quoted(text: str, i: int, quote: str, *, backslash: bool) -> int:
    """The index after the closing `quote` (a doubled quote is an escaped one)."""
    n = len(text)
    while i < n:
        if backslash and text[i] == "\\":
            i += 2
        elif text[i] == quote:
            if i + 1 < n and text[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def _end_of_comment(text: str, i: int) -> int:
    """The index after the `*/` closing the (possibly nested) comment opened at `i`."""
    depth = 0
    n = len(text)
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n
