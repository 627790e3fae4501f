"""Maps every exception to the JSON error body, with no stack trace or internal message leaking."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

from snapshots.api.schemas import ErrorBody, ErrorDetail
from snapshots.errors import DatabaseUnavailable, RefreshTooSoon, SnapshotsError, Unavailable
from snapshots.logs import get_logger
from snapshots.store.errors import DATABASE_ERRORS
from snapshots_client.wire import Freshness

log = get_logger(__name__)

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    detail: ErrorDetail | None = None,
) -> Response[Any]:
    return Response(
        ErrorBody(detail or ErrorDetail(code=code, message=message)),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def snapshots_error(_: Request[Any, Any, Any], exc: SnapshotsError) -> Response[Any]:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    detail = None
    if isinstance(exc, Unavailable):
        freshness = exc.freshness if isinstance(exc.freshness, Freshness) else None
        detail = ErrorDetail(exc.code, exc.message, exc.last_error, freshness)
    elif isinstance(exc, RefreshTooSoon):
        detail = ErrorDetail(exc.code, exc.message, latest_version=exc.latest_version)
    return error_response(exc.status, exc.code, exc.message, headers, detail)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail)
    if exc.status_code == 404:
        message = "no such route; see /schema for the API"
    elif exc.status_code == 400 and isinstance(exc.extra, list) and exc.extra:
        message = "invalid parameters: " + "; ".join(_problem(item) for item in exc.extra)
    elif exc.status_code == 400:
        # Litestar appends "for path <path>?<query>": the query can hold what callers would
        # rather not see repeated (qontract-api's secret reference); the parameter's name is
        # what says what to fix.
        message = message.split(" for path ", 1)[0]
    return error_response(exc.status_code, code, message, dict((exc.headers or {}).items()))


def _problem(item: Any) -> str:
    """One parameter problem Litestar found, as `name: what is wrong`."""
    if isinstance(item, dict):
        return f"{item.get('key', '?')}: {item.get('message', 'invalid')}"
    return str(item)


def database_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.warning(
        "database.unavailable",
        path=request.url.path,
        error_type=type(exc).__name__,
        exc_info=exc,
    )
    unavailable = DatabaseUnavailable("the database is not answering; retry shortly", retry_after=5)
    return snapshots_error(request, unavailable)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("request.failed", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
    return error_response(500, "internal", "internal error; the service log has the details")


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    SnapshotsError: snapshots_error,
    HTTPException: http_error,
    **dict.fromkeys(DATABASE_ERRORS, database_error),
    Exception: internal_error,
}
