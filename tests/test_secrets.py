"""An upstream token never reaches logs, API responses or the database, on any path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Simulator, access_lines, runs_with_outcome
from snapshots.config import JobsConfig, load_jobs

# (provider, dataset, three keys that exist upstream, provider block with the token in it)
CASES = [
    (
        "pagerduty",
        "pagerduty.schedule_users",
        ("PSCH001", "PSCH002", "PSCH003", "PSCH004", "PSCH005"),
        'token = "{token}"',
    ),
    (
        "github",
        "github.repo_collaborators",
        ("acme/repo-01", "acme/repo-02", "acme/repo-03", "acme/repo-04", "acme/repo-05"),
        'token = "{token}"',
    ),
    (
        "jira",
        "jira.project_issues",
        ("PRJ1", "PRJ2", "PRJ3", "PRJ4", "PRJ5"),
        'token = "{token}"\nemail = "bot@example.com"\ndeployment = "cloud"',
    ),
]


def _dump(db: psycopg.Connection[Any]) -> str:
    row = db.execute(
        "SELECT concat_ws(' ',"
        " (SELECT string_agg(t::text, ' ') FROM snapshots t),"
        " (SELECT string_agg(t::text, ' ') FROM refresh_runs t),"
        " (SELECT string_agg(t::text, ' ') FROM dataset_keys t),"
        " (SELECT string_agg(t::text, ' ') FROM datasets t),"
        " (SELECT string_agg(t::text, ' ') FROM refresh_requests t),"
        " (SELECT string_agg(t::text, ' ') FROM worker_leader t))"
    ).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(("provider", "dataset", "keys", "block"), CASES, ids=[c[0] for c in CASES])
def test_token_is_absent_from_logs_responses_and_database_on_every_path(
    provider: str,
    dataset: str,
    keys: tuple[str, ...],
    block: str,
    tmp_path: Path,
    start_gateway: Callable[[JobsConfig], Gateway],
    simulator: Simulator,
    db: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = f"tok-{provider}-SECRET-4f1d9c2e7b"  # recognisable, so any leak is found by a search
    caplog.set_level(logging.DEBUG)
    simulator.set_token(provider, token)
    path = tmp_path / "jobs.toml"
    path.write_text(
        f'[providers.{provider}]\nbase_url = "{simulator.url}/{provider}"\ntimeout = "1s"\n'
        f'max_retries = 0\n{block.format(token=token)}\n[datasets."{dataset}"]\n'
    )
    gateway = start_gateway(load_jobs(path, env={}))
    success, server_error, timeout, malformed, unauthorized = keys

    responses = [gateway.snapshot(dataset, success)]
    simulator.add_fault(provider, "error", status=500)
    responses.append(gateway.snapshot(dataset, server_error))
    simulator.add_fault(provider, "timeout", seconds=2)
    responses.append(gateway.snapshot(dataset, timeout))
    simulator.add_fault(provider, "malformed")
    responses.append(gateway.snapshot(dataset, malformed))
    simulator.set_token(provider, "rotated-elsewhere")
    responses.append(gateway.snapshot(dataset, unauthorized))
    responses.append(gateway.http.get("/api/v1/providers"))
    responses.append(gateway.http.get("/schema/openapi.json"))

    assert [r.status_code for r in responses[:5]] == [200, 503, 503, 503, 503]
    errors = " ".join(r.json()["error"]["message"] for r in responses[1:5])
    assert "500" in errors
    assert "Timeout" in errors
    assert "malformed JSON" in errors
    assert "401" in errors
    assert runs_with_outcome(db, "failed") == 4
    assert "refresh.finished" in caplog.text  # the service's own events were captured
    access_lines(caplog, responses[-1].headers["x-request-id"])  # and the access log's
    for text in [*(r.text for r in responses), caplog.text, _dump(db)]:
        assert token not in text
        assert token[-4:] not in text  # not even a truncated form
