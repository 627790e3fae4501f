"""HEAD on every GET route: answered as the GET would be (status, headers, ETag and 304
logic alike), without the body (RFC 9110 9.3.2). Litestar routes HEAD only to handlers that
return no body, so the request is routed as a GET and the body is dropped on the way out."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def head_as_get(app: ASGIApp) -> ASGIApp:
    """Wrap `app` (in front of routing) so that HEAD requests are served by the GET routes."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return
        # A copy: the server reads the request's method from its own scope (uvicorn's httptools
        # protocol expects no body after a HEAD's Content-Length only while it says HEAD).
        scope = {**scope, "method": "GET"}

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # only the final, empty part goes out
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await app(scope, receive, without_body)

    return handler
