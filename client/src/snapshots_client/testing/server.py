"""Serving a FakeGateway over real HTTP on a loopback port, from a background thread.

The standard library's threading HTTP server is enough for a test double and adds no
dependency to every integration that installs the client.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from snapshots_client.testing.fake import FakeGateway


def _handler(gateway: FakeGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client pools connections

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host = self.headers.get("Host", "127.0.0.1")
            request = httpx.Request(
                self.command,
                f"http://{host}{self.path}",
                headers=list(self.headers.items()),
                content=body,
            )
            response = gateway.handle(request)
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            if self.command != "HEAD":  # a HEAD answer has the GET's headers, no body
                self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        do_GET = _serve  # the names http.server dispatches to
        do_POST = _serve
        do_HEAD = _serve

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the gateway's `requests` list is the log."""

    return Handler


@contextmanager
def serve(gateway: FakeGateway) -> Iterator[FakeGateway]:
    """Serve `gateway` on 127.0.0.1 (a free port) until the block ends; sets `gateway.url`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(gateway))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-snapshots", daemon=True)
    thread.start()
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()
        gateway.url = None
