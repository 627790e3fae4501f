"""Exceptions of the client: one class per thing an integration may handle differently.

Each carries the gateway's error `code` and message (which says what to change) and the
HTTP status. The token is never part of any of them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from snapshots_client.wire import ErrorBody, ErrorDetail, Freshness


class SnapshotsClientError(Exception):
    """Base of every client error."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class ClientConfigError(SnapshotsClientError):
    """The client was built without what it needs (the gateway URL)."""


class BadRequest(SnapshotsClientError):
    """A malformed key or parameter (400); the message shows the expected format."""


class Unauthorized(SnapshotsClientError):
    """No token, or one the gateway does not know (401): set SNAPSHOTS_TOKEN or pass token=."""


class Forbidden(SnapshotsClientError):
    """The token's role is too low (403): refreshing needs an operator token."""


class NotFound(SnapshotsClientError):
    """An unknown dataset or run, or a key the upstream says does not exist (404)."""


class DatasetDisabled(SnapshotsClientError):
    """The dataset cannot fetch (409): the message names the missing gateway setting."""


class Conflict(SnapshotsClientError):
    """The dataset already has as many on-demand keys as it allows (409 `max_keys_reached`)."""


class RefreshTooSoon(SnapshotsClientError):
    """A refresh asked again inside the key's minimum interval (429)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RefreshFailed(SnapshotsClientError):
    """A waited-for refresh failed upstream (502); the last good snapshot is still served."""


class Unavailable(SnapshotsClientError):
    """No usable snapshot now (503), or the gateway could not be reached.

    `last_error` is the key's last refresh error; `freshness` describes the older snapshot a
    `max_age` read refused (None when there is none); `retry_after` is the gateway's advice.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        last_error: str | None = None,
        freshness: Freshness | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.last_error = last_error
        self.freshness = freshness


_BY_STATUS: dict[int, type[SnapshotsClientError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    429: RefreshTooSoon,
    502: RefreshFailed,
    503: Unavailable,
    504: Unavailable,
}


def retry_after_of(value: str | None) -> float | None:
    """Retry-After in seconds; the gateway sends delta-seconds (an HTTP date counts as unknown)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def error_from(status: int, content: bytes, retry_after: str | None) -> SnapshotsClientError:
    """The exception for an error answer, from its JSON body `{"error": {code, message, ...}}`."""
    try:
        detail = msgspec.json.decode(content, type=ErrorBody).error
    except msgspec.DecodeError:
        detail = ErrorDetail(code="unknown", message=f"HTTP {status} without an error body")
    message = f"{detail.code}: {detail.message}"
    common: dict[str, Any] = {"status": status, "code": detail.code}
    if status == 409:
        conflict = DatasetDisabled if detail.code == "dataset_disabled" else Conflict
        return conflict(message, **common)
    kind: type[SnapshotsClientError] = _BY_STATUS.get(status, SnapshotsClientError)
    if kind is Unavailable:
        return Unavailable(
            message,
            retry_after=retry_after_of(retry_after),
            last_error=detail.last_error,
            freshness=detail.freshness,
            **common,
        )
    if kind is RefreshTooSoon:
        return RefreshTooSoon(message, retry_after=retry_after_of(retry_after), **common)
    return kind(message, **common)
