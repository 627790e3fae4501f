"""The access log: one line per request, written in batches.

A request only appends a tuple; every `FLUSH_SECONDS` (or every `FLUSH_LINES` lines, and when
the app stops) the pending requests are rendered and handed to logging as one record, so a
request pays neither structlog's processor chain nor a handler lock and a write of its own. A
`kill -9` loses at most the last `FLUSH_SECONDS` of lines. Each line is exactly what the configured structlog renderer
(`SNAPSHOTS_LOG_FORMAT`, console or JSON) gives for the same event, every string field redacted
as `snapshots.logs` redacts it: `tests/test_access_log.py` holds the two to the same output. The
token's name is logged, never the token.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from litestar.types import Scope

from snapshots.logs import log_format, redact, secrets_generation

LOGGER = "snapshots.access"
EVENT = "request"

FLUSH_SECONDS = 0.05
FLUSH_LINES = 1024

Entry = tuple[int, str, str, int, float, str, str | None]
"""(unix time in microseconds, method, path, status, duration in ms, request id, token name)."""

_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
_QUOTED = re.compile("[ \t=\r\n\"']").search  # ConsoleRenderer quotes (repr) strings with these


def _console_value(value: str | None) -> str:
    if value is None:
        return "None"
    value = redact(value)
    return repr(value) if _QUOTED(value) else value


def _json_string(value: str | None) -> str:
    return "null" if value is None else _quote(redact(value))


@functools.lru_cache(maxsize=4)
def _second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def timestamp(microseconds: int) -> str:
    """What structlog's `TimeStamper(fmt="iso", utc=True)` writes for that instant (ISO 8601 in
    UTC, `Z`, no fraction when it is zero), the date and time formatted once per second."""
    second, fraction = divmod(microseconds, 1_000_000)
    return f"{_second(second)}.{fraction:06d}Z" if fraction else f"{_second(second)}Z"


MEMO_SIZE = 4096


class _Fields:
    """The rendered `method` and `path` fields, and `token`, of the (method, path, token)
    triples seen lately: a busy service logs the same few thousand again and again, so each
    is redacted and quoted once, not on every line. Forgotten whole when a secret is
    registered (the text was redacted without it) and when `MEMO_SIZE` triples are held."""

    def __init__(self, value: Callable[[str | None], str], head: str, tail: str) -> None:
        self._value = value
        self._head = head  # "{method}{head}{path}": the text between the two values
        self._tail = tail  # the text before the token's value
        self._memo: dict[tuple[str, str, str | None], tuple[str, str]] = {}
        self._secrets = secrets_generation()

    def memo(self) -> dict[tuple[str, str, str | None], tuple[str, str]]:
        """The memo, emptied first if it may hold text redacted without a newer secret."""
        if self._secrets is not secrets_generation() or len(self._memo) >= MEMO_SIZE:
            self._memo = {}
            self._secrets = secrets_generation()
        return self._memo

    def render(self, method: str, path: str, token: str | None) -> tuple[str, str]:
        """(method and path, token) as they appear in a line; kept for the next lines."""
        fields = (
            f"{self._value(method)}{self._head}{self._value(path)}",
            f"{self._tail}{self._value(token)}",
        )
        self._memo[method, path, token] = fields
        return fields


_CONSOLE = _Fields(_console_value, " path=", " token=")
_JSON = _Fields(_json_string, ', "path": ', ', "token": ')
_CONSOLE_HEAD = f" [info     ] {EVENT:<30} [{LOGGER}] duration_ms="
_JSON_TAIL = f', "event": "{EVENT}", "level": "info", "logger": "{LOGGER}", "timestamp": "'


def render_console(entries: list[Entry]) -> list[str]:
    """The lines structlog's ConsoleRenderer (no colours, sorted keys) gives for the requests."""
    memo = _CONSOLE.memo()
    lines = []
    for at, method, path, status, duration_ms, request_id, token in entries:
        fields = memo.get((method, path, token)) or _CONSOLE.render(method, path, token)
        lines.append(
            f"{timestamp(at)}{_CONSOLE_HEAD}{duration_ms!r} method={fields[0]} "
            f"request_id={_console_value(request_id)} status={status!r}{fields[1]}"
        )
    return lines


def render_json(entries: list[Entry]) -> list[str]:
    """The lines structlog's JSONRenderer (`json.dumps`) gives for the requests, fields in the
    event's order; strings quoted by json's own C escaper."""
    memo = _JSON.memo()
    lines = []
    for at, method, path, status, duration_ms, request_id, token in entries:
        fields = memo.get((method, path, token)) or _JSON.render(method, path, token)
        lines.append(
            f'{{"method": {fields[0]}, "status": {status!r}, '
            f'"duration_ms": {duration_ms!r}, "request_id": {_json_string(request_id)}'
            f'{fields[1]}{_JSON_TAIL}{timestamp(at)}"}}'
        )
    return lines


RENDERERS: dict[str, Callable[[list[Entry]], list[str]]] = {
    "console": render_console,
    "json": render_json,
}


class AccessLog:
    """The access-log lines of one app's requests (all served on one event loop)."""

    def __init__(self) -> None:
        self._logger = logging.getLogger(LOGGER)
        self._pending: list[Entry] = []

    def record(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        """Note a finished request; it is written with the others of the next FLUSH_SECONDS."""
        if not self._logger.isEnabledFor(logging.INFO):
            return
        state: dict[str, Any] = scope.get("state") or {}
        self._pending.append(
            (
                time.time_ns() // 1000,
                str(scope.get("method", "")),
                scope["path"],
                status,
                round((time.perf_counter() - started) * 1000, 2),
                request_id,
                state.get("principal"),
            )
        )
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no loop (a synchronous caller): write it now
                self.flush()
        elif len(self._pending) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        """Write the pending lines as one record (one handler lock, one write)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        text = "\n".join(RENDERERS[log_format()](pending))
        record = self._logger.makeRecord(LOGGER, logging.INFO, __file__, 0, text, (), None)
        record.rendered = text  # the formatter writes it as it is (see snapshots.logs)
        self._logger.handle(record)
