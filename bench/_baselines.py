"""The baselines of bench/read_path.py, each in a process of its own on uvicorn with the same
settings as the service (`uvicorn_config`: one write per response, the same keep-alive): `bare`
is a Litestar app with one no-op route and no middleware (the framework's cheapest route), `raw`
a bare ASGI callable answering fixed bytes (the limit of the server and the load generator)."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from litestar import Litestar, get

from snapshots.uvicorn_runner import uvicorn_config

BODY = b'{"ok":true}'


@get("/noop", sync_to_thread=False)
def noop() -> dict[str, bool]:
    return {"ok": True}


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Fixed bytes for every HTTP request (lifespan events are acknowledged)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    app: Any = Litestar(route_handlers=[noop]) if kind == "bare" else raw
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port)).run()  # the service's own settings


if __name__ == "__main__":
    main()
