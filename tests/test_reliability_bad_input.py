"""Bad input at the API: oversized headers, paths and bodies, path traversal and injection in
keys and dataset names, invalid parameters and tokens. Each is a 4xx whose message says what
to change; none is a 5xx, and stored data is untouched. (Generated requests over the whole
OpenAPI document are in test_openapi_fuzz.py.)"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from helpers import Gateway, runs_with_outcome, wait_for
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig

PD = "/api/v1/snapshots/pagerduty.schedule_users"

# (method, raw path, extra headers, body, status, code, words the message must contain);
# requests carry a reader token unless Authorization is given ("operator": that token).
CASES: dict[str, tuple[str, str, dict[str, str], bytes, int, str, str]] = {
    "headers over 16 KiB": (
        "GET",
        f"{PD}/PSCH001",
        {"X-Pad": "x" * 20000},
        b"",
        431,
        "headers_too_large",
        "at most 16384",
    ),
    "path over 4 KiB": (
        "GET",
        f"{PD}/{'P' * 5000}",
        {},
        b"",
        414,
        "path_too_long",
        "no dataset key",
    ),
    "body on a refresh": (
        "POST",
        f"{PD}/PSCH001/refresh",
        {},
        b"x" * 100_000,
        413,
        "too_large",
        "query string",
    ),
    "traversal in a key": (
        "GET",
        f"{PD}/..%2F..%2F..%2Fetc%2Fpasswd",
        {},
        b"",
        400,
        "malformed_key",
        "PagerDuty object id",
    ),
    "raw dot segments": (
        "GET",
        f"{PD}/../../../../etc/passwd",
        {},
        b"",
        400,
        "malformed_key",
        "PagerDuty object id",
    ),
    "traversal as the dataset": (
        "GET",
        "/api/v1/snapshots/%2e%2e/PSCH001",
        {},
        b"",
        404,
        "unknown_dataset",
        "registered datasets",
    ),
    "SQL in a key": (
        "GET",
        f"{PD}/PSCH001'%20OR%20'1'='1",
        {},
        b"",
        400,
        "malformed_key",
        "expected",
    ),
    "SQL in a dataset": (
        "GET",
        "/api/v1/snapshots/x;DROP%20TABLE%20snapshots/PSCH001",
        {},
        b"",
        404,
        "unknown_dataset",
        "registered datasets",
    ),
    "NUL in a key": (
        "GET",
        "/api/v1/snapshots/github.repo/acme%00/repo-01",
        {},
        b"",
        400,
        "malformed_key",
        "owner/repo",
    ),
    "traversal in owner/repo": (
        "GET",
        "/api/v1/snapshots/github.repo/..%2F..%2Fsecrets",
        {},
        b"",
        400,
        "malformed_key",
        "owner/repo",
    ),
    "dot segment in owner/repo": (
        "GET",
        "/api/v1/snapshots/github.repo/acme%2F..",
        {},
        b"",
        400,
        "malformed_key",
        "'..' path segment",
    ),
    "dot segment on a bare route": (
        "GET",
        "/api/v1/github/repos/acme/%2E%2E/collaborators",
        {},
        b"",
        400,
        "malformed_key",
        "'..' path segment",
    ),
    "script in a key": (
        "GET",
        f"{PD}/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        {},
        b"",
        400,
        "malformed_key",
        "expected",
    ),
    "negative max_age": ("GET", f"{PD}/PSCH001?max_age=-1", {}, b"", 400, "bad_request", "max_age"),
    "wait past 300 s": (
        "POST",
        f"{PD}/PSCH001/refresh?wait=1e9",
        {"Authorization": "operator"},
        b"",
        400,
        "bad_request",
        "wait",
    ),
    "history limit 0": (
        "GET",
        f"{PD}/PSCH001/history?limit=0",
        {},
        b"",
        400,
        "bad_request",
        "limit (1-1000)",
    ),
    "history since garbage": (
        "GET",
        f"{PD}/PSCH001/history?since=yesterday",
        {},
        b"",
        400,
        "bad_request",
        "ISO times",
    ),
    "run id past bigint": (
        "GET",
        "/api/v1/runs/99999999999999999999999",
        {},
        b"",
        400,
        "bad_request",
        "run_id",
    ),
    "no token": ("GET", f"{PD}/PSCH001", {"Authorization": ""}, b"", 401, "unauthorized", "token"),
    "basic auth": (
        "GET",
        f"{PD}/PSCH001",
        {"Authorization": "Basic dXNlcjpwYXNz"},
        b"",
        401,
        "unauthorized",
        "Bearer",
    ),
    "unknown token": (
        "GET",
        f"{PD}/PSCH001",
        {"Authorization": "Bearer snp_guess"},
        b"",
        401,
        "unauthorized",
        "token",
    ),
    "8 KiB token": (
        "GET",
        f"{PD}/PSCH001",
        {"Authorization": "Bearer " + "a" * 8192},
        b"",
        401,
        "unauthorized",
        "token",
    ),
    "latin-1 token": (
        "GET",
        f"{PD}/PSCH001",
        {"Authorization": "Bearer caf\xe9"},
        b"",
        401,
        "unauthorized",
        "token",
    ),
    "reader refreshing": (
        "POST",
        f"{PD}/PSCH001/refresh",
        {"Authorization": "reader"},
        b"",
        403,
        "forbidden",
        "operator",
    ),
}


@pytest.fixture
def gateway(
    start_gateway: Callable[[JobsConfig], Gateway],
    every_dataset_config: Callable[..., JobsConfig],
    tmp_path: Path,
    db: psycopg.Connection[Any],
) -> tuple[Gateway, dict[str, str]]:
    tokens = tmp_path / "tokens"
    roles = {role: create_token(tokens, f"{role}-bot", role) for role in ("reader", "operator")}
    gateway = start_gateway(every_dataset_config(api=f'tokens_file = "{tokens}"'))
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    return gateway, roles


def _send(
    url: str, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, Any]]:
    """One request exactly as written (http.client leaves dot segments and encodings alone)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            if value:
                connection.putheader(name, value.encode("latin-1"))
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_clear_4xx_and_stored_data_is_untouched(
    case: str, gateway: tuple[Gateway, dict[str, str]], db: psycopg.Connection[Any]
) -> None:
    service, tokens = gateway
    reader = tokens["reader"]
    method, path, headers, body, status, code, words = CASES[case]
    sent = {"Authorization": "reader", **headers}
    if sent["Authorization"] in tokens:  # a role named in CASES: that role's token
        sent["Authorization"] = f"Bearer {tokens[sent['Authorization']]}"
    before = db.execute("SELECT id, content_hash FROM snapshots ORDER BY id").fetchall()

    answered, error = _send(service.server.url, method, path, sent, body)

    assert (answered, error["error"]["code"]) == (status, code), error
    assert words in error["error"]["message"]
    assert db.execute("SELECT id, content_hash FROM snapshots ORDER BY id").fetchall() == before
    still = _send(
        service.server.url, "GET", f"{PD}/PSCH001", {"Authorization": f"Bearer {reader}"}, b""
    )
    assert still[0] == 200
