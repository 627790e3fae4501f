"""schemathesis against the running API's own OpenAPI document: no 5xx, no schema violations."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from helpers import Gateway, Simulator, jobs_toml, runs_with_outcome, wait_for
from snapshots.config import JobsConfig, load_jobs


def test_schemathesis_finds_no_server_errors_or_schema_violations(
    tmp_path: Path,
    start_gateway: Callable[[JobsConfig], Gateway],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    path = tmp_path / "jobs.toml"
    # Every built-in dataset, so every route (bare ones and qontract-api's) is in the document.
    others = (
        "pagerduty.escalation_policy",
        "pagerduty.schedule_on_call",
        "pagerduty.user",
        "github.repo",
        "github.repo_collaborators",
        "jira.project",
        "jira.project_issues",
    )
    tables = "\n".join(f'[datasets."{name}"]' for name in others)
    path.write_text(jobs_toml(simulator.url, keys=("PSCH001",), extra=tables))
    gateway = start_gateway(load_jobs(path, env={}))
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"

    result = subprocess.run(
        [
            cli,
            "run",
            f"{gateway.server.url}/schema/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            "25",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-deterministic",
            "--request-timeout",
            "20",
            "--suppress-health-check",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-6000:]
    spec = gateway.http.get("/schema/openapi.json").json()
    operations = sum(
        1 for methods in spec["paths"].values() for method in methods if method != "parameters"
    )
    assert operations >= 23
    assert f"Tested: {operations}" in result.stdout  # every operation was exercised
    assert " generated, " in result.stdout
