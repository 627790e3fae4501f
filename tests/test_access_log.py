"""The access log's own renderers give, field for field, what structlog's configured renderers
give for the same event (console and JSON, secrets redacted, odd characters quoted), and a
batch of lines reaches the log handler as those lines, written as they are."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from snapshots.api.access_log import EVENT, LOGGER, RENDERERS, AccessLog, Entry, timestamp
from snapshots.logs import configure_logging, get_logger, register_secret

SECRET = "snp_access-log-secret-0123456789"
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")

ENTRIES: list[Entry] = [
    (1_765_000_000_123_456, "GET", "/api/v1/snapshots/pagerduty.schedule_users/P1", 200, 0.12,
     "abc-1", "bot"),
    (1_765_000_000_500_000, "HEAD", "/api/v1/x y/\"q\"='z'\t", 304, 12.0, "f" * 24, None),
    (1_765_000_001_000_000, "GET", f"/mirror/github/{SECRET}/repos", 401, 1234.56, SECRET,
     "jwt:slack-usergroups"),
    (1_765_000_002_000_001, "GET", "/api/v1/latest/jira.project/ÄBC-é", 404, 0.0, "id", "x=y"),
]  # fmt: skip


class Output:
    """The root handler's stream, captured, with logging configured in a given format."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def use(self, fmt: str = "console", level: str = "DEBUG") -> None:
        configure_logging(level=level, fmt=fmt)
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(self.stream)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()


@pytest.fixture
def output() -> Iterator[Output]:
    """Captured output; logging is configured back to the suite's afterwards."""
    register_secret(SECRET)
    yield Output()
    configure_logging(level="DEBUG")


def _log_with_structlog(entries: list[Entry]) -> None:
    log = get_logger(LOGGER)
    for _, method, path, status, duration_ms, request_id, token in entries:
        log.info(
            EVENT,
            method=method,
            path=path,
            status=status,
            duration_ms=duration_ms,
            request_id=request_id,
            token=token,
        )


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_lines_are_what_structlog_renders(fmt: str, output: Output) -> None:
    output.use(fmt)
    _log_with_structlog(ENTRIES)
    expected = [_TIMESTAMP.sub("T", line) for line in output.lines()]
    ours = [_TIMESTAMP.sub("T", line) for line in RENDERERS[fmt](ENTRIES)]
    assert ours == expected
    assert len(expected) == len(ENTRIES)
    assert all(SECRET not in line for line in ours)
    assert sum(line.count("***") for line in ours) == 2  # the path and the request id


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_secret_registered_later_is_redacted_in_lines_rendered_before(
    fmt: str, output: Output
) -> None:
    """Recurring fields are rendered once and remembered; a secret registered afterwards (a
    token file reloaded, a provider added) must still be redacted from the next lines."""
    output.use(fmt)
    late = f"snp_registered-after-the-first-line-{fmt}"  # registered secrets stay registered
    entry: Entry = (1_765_000_000_000_001, "GET", f"/mirror/x/{late}", 200, 0.5, "id-1", late)
    assert late in RENDERERS[fmt]([entry])[0]  # not a secret yet: logged as it is
    register_secret(late)
    assert late not in RENDERERS[fmt]([entry])[0]
    first, remembered = RENDERERS[fmt]([entry, entry])  # the second from the remembered fields
    assert remembered == first
    assert first.count("***") == 2


@pytest.mark.parametrize(
    "microseconds", [1_765_000_000_123_456, 1_765_000_001_000_000, 1_765_000_001_000_001, 0]
)
def test_timestamps_are_structlogs_iso_utc(microseconds: int) -> None:
    """TimeStamper writes `datetime.now(UTC).isoformat()` with `Z` (no fraction when zero)."""
    instant = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=microseconds)
    assert timestamp(microseconds) == instant.isoformat().replace("+00:00", "Z")
    assert RENDERERS["console"]([(microseconds, *ENTRIES[0][1:])])[0].startswith(
        f"{timestamp(microseconds)} [info     ] request "
    )


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_batch_is_written_once_as_its_lines(
    fmt: str, output: Output, caplog: pytest.LogCaptureFixture
) -> None:
    output.use(fmt)
    logging.getLogger().addHandler(caplog.handler)  # configure_logging replaced the handlers
    access = AccessLog()
    scope = {"type": "http", "method": "GET", "path": "/p", "state": {"principal": "bot"}}
    for number in range(3):  # no running loop here: each is written at once
        access.record(scope, 200, 0.0, f"req-{number}")  # type: ignore[arg-type]
    lines = output.lines()
    assert [re.search(r"req-\d", line).group(0) for line in lines] == ["req-0", "req-1", "req-2"]  # type: ignore[union-attr]
    assert all("bot" in line and "/p" in line for line in lines)
    # Other handlers (pytest's capture here) see the same lines, from records of this logger.
    assert [r.name for r in caplog.records if "req-" in r.getMessage()] == [LOGGER] * 3


def test_nothing_is_recorded_below_the_configured_level(output: Output) -> None:
    output.use(level="WARNING")
    access = AccessLog()
    access.record({"type": "http", "method": "GET", "path": "/p"}, 200, 0.0, "quiet")  # type: ignore[arg-type]
    access.flush()
    assert "quiet" not in output.stream.getvalue()
