"""A small ASGI app for the server's own tests (`test_http_writes.py`): fixed answers, a
streamed one with a pause, an echo of the request body, and a large body."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from snapshots.uvicorn_runner import uvicorn_config

LARGE = bytes(range(256)) * 20_000  # 5 MB: many times the transport's buffer limits
PAUSE_SECONDS = 1.5


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        parts = [body]
    elif path == "/large":
        parts = [LARGE[i : i + 300_000] for i in range(0, len(LARGE), 300_000)]
    elif path == "/streamed":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(PAUSE_SECONDS)  # the head must not wait for the body
        await send({"type": "http.response.body", "body": b"late", "more_body": False})
        return
    else:
        parts = [f"answer to {path}".encode()]
    length = str(sum(map(len, parts))).encode()
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", length)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for number, part in enumerate(parts, 1):
        await send({"type": "http.response.body", "body": part, "more_body": number < len(parts)})


if __name__ == "__main__":  # the service's uvicorn settings on a port: python byte_app.py PORT
    import uvicorn

    uvicorn.Server(uvicorn_config(app, "127.0.0.1", int(sys.argv[1]))).run()
