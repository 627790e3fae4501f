"""Request size limits, checked before routing: no route takes a request body, and headers or
paths this large are a mistake or an attack, answered 4xx with what to change.

A body without a Content-Length (`Transfer-Encoding: chunked`) is read and counted before
routing: no route reads its body, so a limit checked only where a route reads would never fire.
At most MAX_BODY_BYTES are ever buffered; one byte more and the request is refused."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from litestar.enums import ScopeType
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

from snapshots.api.schemas import ErrorBody, ErrorDetail

MAX_HEADER_BYTES = 16 * 1024
MAX_PATH_BYTES = 4 * 1024
MAX_BODY_BYTES = 64 * 1024
_TOO_LARGE = (
    f"request bodies are limited to {MAX_BODY_BYTES} bytes and no route reads one; "
    "parameters go in the query string"
)


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
                return 413, "too_large", _TOO_LARGE
    return None


async def _read_streamed_body(receive: Receive) -> Receive | None:
    """Read a body of undeclared length, counting it: None once it passes MAX_BODY_BYTES, else a
    `receive` that hands the app the same body and then whatever the server sends next."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: pass that on
            return _replay(message, receive)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            whole: HTTPRequestEvent = {
                "type": "http.request",
                "body": b"".join(chunks),
                "more_body": False,
            }
            return _replay(whole, receive)


def _replay(first: ReceiveMessage, receive: Receive) -> Receive:
    pending = [first]

    async def replay() -> ReceiveMessage:
        return pending.pop() if pending else await receive()

    return replay


def _declares_length(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name == b"content-length" for name, _ in headers)


def request_limits(app: ASGIApp) -> ASGIApp:
    """Wrap `app`: refuse oversized headers (431), paths (414) and bodies (413)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        refusal = _refusal(scope["headers"], scope["path"])
        if refusal is None and not _declares_length(scope["headers"]):
            counted = await _read_streamed_body(receive)
            if counted is None:
                refusal = 413, "too_large", _TOO_LARGE
            else:
                receive = counted
        if refusal is None:
            await app(scope, receive, send)
            return
        status, code, message = refusal
        body = msgspec.json.encode(ErrorBody(ErrorDetail(code=code, message=message)))
        response = ASGIResponse(
            body=body,
            status_code=status,
            media_type="application/json",
            # the rest of an unread body would be taken for the next request: end the connection
            headers={"connection": "close"} if status == 413 else None,
        )
        await response(scope, receive, send)

    return middleware
