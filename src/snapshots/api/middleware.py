"""Request ids and structured access logs (with the token's name, never the token)."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from snapshots.logs import get_logger

log = get_logger("snapshots.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# A random per-process prefix and a counter: unique like a UUID, at a fraction of the cost.
_PREFIX = uuid.uuid4().hex[:16]
_counter = itertools.count()


def request_id_of(scope: Scope) -> str:
    """The caller's `X-Request-ID` when it is sane, else a new one."""
    incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
    return incoming if _SAFE_ID.fullmatch(incoming) else f"{_PREFIX}{next(_counter):08x}"


def log_access(scope: Scope, status: int, started: float, request_id: str) -> None:
    """The access-log line of a request (the token's name from the scope, never the token)."""
    state: dict[str, Any] = scope.get("state") or {}
    log.info(
        "request",
        method=scope.get("method"),
        path=scope["path"],
        status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        request_id=request_id,
        token=state.get("principal"),
    )


def request_log(app: ASGIApp, access_log: bool = True) -> ASGIApp:
    """Wrap `app`: every response gets `X-Request-ID` (the caller's, if sane), and is logged."""

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
            if access_log:
                log_access(scope, status, started, request_id)

    return middleware
