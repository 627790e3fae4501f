"""Request bodies over the limit are refused however they are framed: a chunked
(`Transfer-Encoding: chunked`) body is counted as it streams and answered 413 before any route
runs, over real HTTP against a running gateway."""

from __future__ import annotations

import http.client
import json
import select
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from helpers import Gateway, runs_with_outcome, wait_for
from snapshots.api.limits import MAX_BODY_BYTES
from snapshots.config import JobsConfig

# `wait`: were the route to run, its refresh run would be recorded before the answer
REFRESH = "/api/v1/snapshots/pagerduty.schedule_users/PSCH001/refresh?wait=10"
CHUNK = 16 * 1024


def _post_chunked(url: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST `body` with `Transfer-Encoding: chunked` over a raw socket, as a streaming client
    would: stop sending as soon as the server answers (it may refuse before reading it all)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        frames = [
            b"%x\r\n%s\r\n" % (len(body[i : i + CHUNK]), body[i : i + CHUNK])
            for i in range(0, len(body), CHUNK)
        ]
        outgoing = [head.encode(), *frames, b"0\r\n\r\n"]
        try:
            for frame in outgoing:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered already
                sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed; the answer is still there to read
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read() or b"{}")


def _demand_runs(db: psycopg.Connection[Any]) -> int:
    row = db.execute("SELECT count(*) FROM refresh_runs WHERE trigger <> 'schedule'").fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def gateway(
    start_gateway: Callable[[JobsConfig], Gateway],
    every_dataset_config: Callable[..., JobsConfig],
    db: psycopg.Connection[Any],
) -> Gateway:
    gateway = start_gateway(every_dataset_config())  # no tokens: the local operator may refresh
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    return gateway


def test_chunked_body_over_the_limit_is_refused_413_before_the_route(
    gateway: Gateway, db: psycopg.Connection[Any]
) -> None:
    status, error = _post_chunked(gateway.server.url, REFRESH, b"x" * 1_000_000)

    assert status == 413, error
    assert error["error"]["code"] == "too_large"
    assert f"limited to {MAX_BODY_BYTES} bytes" in error["error"]["message"]
    assert _demand_runs(db) == 0  # the refresh route never ran
    assert gateway.snapshot("pagerduty.schedule_users", "PSCH001").status_code == 200


def test_chunked_body_just_over_the_limit_is_refused_413(gateway: Gateway) -> None:
    status, error = _post_chunked(gateway.server.url, REFRESH, b"x" * (MAX_BODY_BYTES + 1))

    assert status == 413, error
    assert error["error"]["code"] == "too_large"


def test_small_chunked_body_is_not_refused_by_the_limit(
    gateway: Gateway, db: psycopg.Connection[Any]
) -> None:
    status, body = _post_chunked(gateway.server.url, REFRESH, b"x" * 1000)

    assert status == 200, body
    assert body["key"] == "PSCH001"
    assert _demand_runs(db) == 1
