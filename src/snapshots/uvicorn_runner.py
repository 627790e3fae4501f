"""Running an ASGI app with uvicorn, in the foreground or on a background thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn


def uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )


@dataclass
class BackgroundServer:
    """A uvicorn server on its own thread and event loop, for the demo's simulator and for tests."""

    server: uvicorn.Server
    thread: threading.Thread

    @property
    def port(self) -> int:
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0
) -> BackgroundServer:
    """Start `app` on `host:port` (port 0 picks a free one) and return once it accepts connections."""
    server = uvicorn.Server(uvicorn_config(app, host, port))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server stopped while starting; see the log above")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"the server did not start within {timeout:g}s")
        time.sleep(0.02)
    return BackgroundServer(server, thread)
