"""Request ids, and the access-log line of every request (with the token's name, never the
token)."""

from __future__ import annotations

import itertools
import re
import time
import uuid

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from snapshots.api.access_log import AccessLog

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# A random per-process prefix and a counter: unique like a UUID, at a fraction of the cost.
_PREFIX = uuid.uuid4().hex[:16]
_counter = itertools.count()


def request_id_of(scope: Scope) -> str:
    """The caller's `X-Request-ID` when it is sane, else a new one."""
    incoming = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            incoming = value  # the last one, as a dict of the headers would give
    return request_id(incoming)


def request_id(incoming: bytes | None) -> str:
    """`incoming` (an `X-Request-ID` header's value) when it is sane, else a new id."""
    if incoming is not None:
        text = incoming.decode("latin-1")
        if _SAFE_ID.fullmatch(text):
            return text
    return f"{_PREFIX}{next(_counter):08x}"


def request_log(app: ASGIApp, access_log: AccessLog | None = None) -> ASGIApp:
    """Wrap `app`: every response gets `X-Request-ID` (the caller's, if sane), and is logged to
    `access_log` (none: not logged)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            if access_log is not None:
                access_log.record(scope, status, started, request_id)

    return middleware
