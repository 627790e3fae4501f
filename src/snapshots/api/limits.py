"""Request size limits, checked before routing: no route takes a request body, and headers or
paths this large are a mistake or an attack, answered 4xx with what to change."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from litestar.enums import ScopeType
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Receive, Scope, Send

from snapshots.api.schemas import ErrorBody, ErrorDetail

MAX_HEADER_BYTES = 16 * 1024
MAX_PATH_BYTES = 4 * 1024
MAX_BODY_BYTES = 64 * 1024


def _refusal(headers: Iterable[tuple[bytes, bytes]], path: str) -> tuple[int, str, str] | None:
    """(status, code, message) when the request is over a limit, else None."""
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES:
        return (
            431,
            "headers_too_large",
            f"request headers are {size} bytes; at most {MAX_HEADER_BYTES} are accepted",
        )
    if len(path.encode()) > MAX_PATH_BYTES:
        return (
            414,
            "path_too_long",
            f"the path is over {MAX_PATH_BYTES} bytes; no dataset key is that long",
        )
    for name, value in headers:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
            if length is None or length > MAX_BODY_BYTES:
                return (
                    413,
                    "too_large",
                    f"request bodies are limited to {MAX_BODY_BYTES} bytes and no route reads one; "
                    "parameters go in the query string",
                )
    return None


def request_limits(app: ASGIApp) -> ASGIApp:
    """Wrap `app`: refuse oversized headers (431), paths (414) and bodies (413)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        refusal = (
            _refusal(scope["headers"], scope["path"]) if scope["type"] == ScopeType.HTTP else None
        )
        if refusal is None:
            await app(scope, receive, send)
            return
        status, code, message = refusal
        body = msgspec.json.encode(ErrorBody(ErrorDetail(code=code, message=message)))
        response = ASGIResponse(body=body, status_code=status, media_type="application/json")
        await response(scope, receive, send)

    return middleware
