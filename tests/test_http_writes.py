"""The service's HTTP server writes a response sent in one go with one system call, and still
sends what is written later (a streamed body after a pause, `100 Continue`) without waiting,
large bodies whole and pipelined answers in order (`snapshots.http_writes`)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from byte_app import LARGE, PAUSE_SECONDS, app
from helpers import free_port, wait_for
from snapshots.uvicorn_runner import BackgroundServer, start_in_thread

REQUESTS = 200


def _write_calls(pid: int) -> int:
    """System calls of the write family the process has made (`syscw` of /proc/PID/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError(f"no syscw in /proc/{pid}/io")


@pytest.fixture
def server() -> Iterator[BackgroundServer]:
    running = start_in_thread(app)
    yield running
    running.stop()


def _exchange(port: int, request: bytes, until: bytes, timeout: float = 10.0) -> bytes:
    """Send `request` on a new connection; what arrives until `until` has been seen."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while until not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_a_response_leaves_in_one_write(tmp_path: Path) -> None:
    """uvicorn writes a response's head and body separately (two system calls and two TCP
    segments per answer); through the service's settings it is one."""
    port = free_port()
    log = tmp_path / "server.log"
    tests = str(Path(__file__).parent)
    child = subprocess.Popen(
        [sys.executable, str(Path(tests) / "byte_app.py"), str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{url}/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=30)
        with httpx.Client(base_url=url) as client:  # one keep-alive connection
            assert client.get("/first").content == b"answer to /first"
            before = _write_calls(child.pid)
            for number in range(REQUESTS):
                assert client.get(f"/{number}").content == f"answer to /{number}".encode()
            writes = _write_calls(child.pid) - before
        assert REQUESTS <= writes <= REQUESTS * 1.1, (writes, log.read_text())
    finally:
        child.terminate()
        child.wait(15)


def test_a_streamed_head_arrives_before_its_body(server: BackgroundServer) -> None:
    """Writes are held to the end of the event loop's turn only: a head whose body comes
    later is not kept until then."""
    started = time.monotonic()
    with httpx.stream("GET", f"{server.url}/streamed", timeout=10) as response:
        head_after = time.monotonic() - started
        assert response.status_code == 200
        assert response.read() == b"late"
        body_after = time.monotonic() - started
    assert head_after < PAUSE_SECONDS / 2, head_after
    assert body_after >= PAUSE_SECONDS


def test_100_continue_is_sent_before_the_client_sends_its_body(server: BackgroundServer) -> None:
    """The interim answer is written while the app waits for the body, so the client that
    waits for it before sending the body is not left waiting."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        received = b""
        while not received.endswith(b"hello"):
            chunk = sock.recv(1024)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_large_body_arrives_whole(server: BackgroundServer) -> None:
    """Bodies past the held-bytes limit go out under uvicorn's flow control, in order."""
    response = httpx.get(f"{server.url}/large", timeout=30)
    assert response.status_code == 200
    assert len(response.content) == len(LARGE)
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(LARGE).digest()


def test_pipelined_requests_are_answered_in_order(server: BackgroundServer) -> None:
    requests = b"".join(f"GET /p{n} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for n in range(5))
    received = _exchange(server.port, requests, b"answer to /p4")
    positions = [received.index(f"answer to /p{n}".encode()) for n in range(5)]
    assert positions == sorted(positions)
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 5


def test_a_response_to_connection_close_is_written_before_the_close(
    server: BackgroundServer,
) -> None:
    """uvicorn closes the connection right after the last write; what is held goes first."""
    received = _exchange(
        server.port, b"GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", b"\x00never"
    )
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(b"answer to /bye")


def test_a_client_that_half_closes_after_its_request_gets_the_answer(
    server: BackgroundServer,
) -> None:
    """`printf 'GET ...' | nc`: the request, then SHUT_WR. The end-of-turn flush comes after
    the poll that sees the FIN, when the transport is closing; held writes go out on EOF first
    (found by outside testing: 5 of 50 answered before)."""
    answered = 0
    for number in range(50):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(f"GET /h{number} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        answered += received.endswith(f"answer to /h{number}".encode())
    assert answered == 50
