"""Running an ASGI app with uvicorn, in the foreground or on a background thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from snapshots.http_writes import JoinedWritesProtocol

KEEP_ALIVE_SECONDS = 75
"""How long an idle HTTP/1.1 connection stays open. uvicorn's default (5 s) equals httpx's own
idle expiry, and is below load balancers' (60 s): the server closing first races the client's
next request on the connection, which then fails with no answer. Longer than the clients', the
client closes first and nothing is lost."""


def uvicorn_config(app: Any, host: str, port: int, **settings: Any) -> uvicorn.Config:
    """The service's uvicorn settings (`settings` adds to them, e.g. `workers`): a response
    leaves in one write (`JoinedWritesProtocol`)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=JoinedWritesProtocol,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **settings,
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


class ProcessesFailed(Exception):
    """A process of a multi-process server failed at startup, so the supervisor stopped."""


def supervise(app: str, workers: int, host: str, port: int) -> None:
    """uvicorn's multi-process supervisor for the factory `app` ("module:function"): binds the
    socket once, starts `workers` processes on it and replaces one that dies, until a signal.

    What `uvicorn.run(workers=N)` leaves out: when a process fails at startup (exit status 3:
    its app or lifespan failed, and every restart would fail alike) uvicorn stops them all and
    returns as if asked to; this raises ProcessesFailed instead, so the command exits non-zero.
    """
    config = uvicorn_config(app, host, port, factory=True, workers=workers)
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    failed = [
        process.pid for process in supervisor.processes if process.exitcode == STARTUP_FAILURE
    ]
    if failed:
        raise ProcessesFailed(
            f"API process {', '.join(map(str, failed))} failed to start (its log above says why); "
            "all processes were stopped"
        )
