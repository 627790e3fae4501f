"""Upstream faults never cost the last good snapshot: 5xx bursts, timeouts, malformed JSON,
a page failing mid-pagination, empty results and a rotated token each leave the stored
snapshot served as it was, with the failure in the run log and nothing partial stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Simulator
from snapshots.config import JobsConfig


@dataclass(frozen=True)
class Fault:
    dataset: str
    key: str
    arrange: Callable[[Simulator], None]
    outcome: str  # what the run log must record
    error: str  # a word the recorded error must contain


FAULTS = {
    "5xx burst": Fault(
        "pagerduty.escalation_policy",
        "PPOL001",
        lambda sim: sim.add_fault("pagerduty", "error", status=503, count=20),
        "failed",
        "503",
    ),
    "timeouts": Fault(
        "pagerduty.escalation_policy",
        "PPOL001",
        lambda sim: sim.add_fault("pagerduty", "timeout", seconds=3, count=20),
        "failed",
        "Timeout",
    ),
    "malformed JSON": Fault(
        "pagerduty.schedule_users",
        "PSCH001",
        lambda sim: sim.add_fault("pagerduty", "malformed", count=20),
        "failed",
        "malformed",
    ),
    "Jira page 2 of 2 fails": Fault(
        "jira.project_issues",
        "PRJ3",
        lambda sim: sim.add_fault("jira", "error", status=500, path="startAt=100", count=20),
        "failed",
        "500",
    ),
    "GitHub page 2 of 3 is malformed": Fault(
        "github.repo_collaborators",
        "acme/repo-03",
        lambda sim: sim.add_fault("github", "malformed", path="page=2", count=20),
        "failed",
        "github",
    ),
    "empty result where 130 issues were": Fault(
        "jira.project_issues",
        "PRJ3",
        lambda sim: sim.add_fault("jira", "empty", count=20),
        "rejected",
        "dropped from 130 to 0",
    ),
    "401 after token rotation": Fault(
        "github.repo",
        "acme/repo-01",
        lambda sim: sim.set_token("github", "rotated-elsewhere"),
        "failed",
        "401",
    ),
}


def _stored(db: psycopg.Connection[Any], dataset: str, key: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT version, content_hash, item_count FROM snapshots"
        " WHERE dataset = %s AND key = %s ORDER BY version",
        (dataset, key),
    ).fetchall()


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_keeps_the_last_good_snapshot_and_is_logged(
    name: str,
    start_gateway: Callable[[JobsConfig], Gateway],
    every_dataset_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    fault = FAULTS[name]
    quick = 'timeout = "1s"\nmax_retries = 1'
    gateway = start_gateway(
        every_dataset_config(
            providers={"pagerduty": quick, "github": f"{quick}\npage_size = 30", "jira": quick}
        )
    )
    path = f"/api/v1/snapshots/{fault.dataset}/{fault.key}"
    good = gateway.http.get(path)
    assert good.status_code == 200
    stored = _stored(db, fault.dataset, fault.key)

    fault.arrange(simulator)
    refresh = gateway.http.post(f"{path}/refresh", params={"wait": 20})
    after = gateway.http.get(path)

    if fault.outcome == "failed":
        assert refresh.status_code == 502
        assert "last good snapshot is kept" in refresh.json()["error"]["message"]
    else:
        assert refresh.headers["X-Refresh-Outcome"] == fault.outcome
    assert after.status_code == 200
    assert after.json()["data"] == good.json()["data"]
    assert after.json()["version"] == good.json()["version"]
    assert after.headers["ETag"] == good.headers["ETag"]
    assert after.json()["freshness"]["last_error"]
    assert _stored(db, fault.dataset, fault.key) == stored  # nothing partial, nothing new
    outcome, error, snapshot_id = db.execute(
        "SELECT outcome, error, snapshot_id FROM refresh_runs"
        " WHERE dataset = %s AND key = %s ORDER BY id DESC LIMIT 1",
        (fault.dataset, fault.key),
    ).fetchone() or (None, None, None)
    assert outcome == fault.outcome
    assert error is not None
    assert fault.error in error
    if fault.outcome == "failed":
        assert snapshot_id is None
