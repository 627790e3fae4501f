"""An ASGI app factory whose lifespan startup fails, for the multi-process supervisor's test."""

from __future__ import annotations

from typing import Any


def factory() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "this app never starts"})

    return app
