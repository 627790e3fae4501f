"""Load: 100 concurrent readers for 30 s while refreshes run and versions change. No 5xx,
every ETag matches its body, and no reader ever sees a version older than one it saw."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from helpers import Service, Simulator, canonical_hash, jobs_toml, rotating

KEYS = tuple(f"PSCH{n:03d}" for n in range(1, 11))
READERS = 100
SECONDS = 30.0


async def _reader(
    http: httpx.AsyncClient, seed: int, until: float, statuses: Counter[int], problems: list[str]
) -> int:
    """One integration polling random keys; half its reads are conditional on its last ETag."""
    pick = random.Random(seed)
    seen: dict[str, int] = {}
    etags: dict[str, str] = {}
    reads = 0
    while time.monotonic() < until:
        key = pick.choice(KEYS)
        headers = {"If-None-Match": etags[key]} if key in etags and pick.random() < 0.5 else {}
        response = await http.get(
            f"/api/v1/snapshots/pagerduty.schedule_users/{key}", headers=headers
        )
        reads += 1
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            problems.append(f"{key}: {response.status_code} {response.text[:200]}")
            continue
        version = int(response.headers["X-Snapshot-Version"])
        if version < seen.get(key, 0):
            problems.append(f"reader {seed} saw {key} v{version} after v{seen[key]}")
        seen[key] = max(version, seen.get(key, 0))
        if response.status_code == 304:
            if response.content or response.headers["ETag"] != headers["If-None-Match"]:
                problems.append(f"{key}: a 304 with a body or another ETag")
            continue
        body = response.json()
        if response.headers["ETag"] != f'"{canonical_hash(body["data"])}"':
            problems.append(f"{key} v{version}: the ETag does not match the body")
        if body["version"] != version:
            problems.append(f"{key}: X-Snapshot-Version {version}, body version {body['version']}")
        etags[key] = response.headers["ETag"]
    return reads


async def _read_for(url: str, seconds: float) -> tuple[int, Counter[int], list[str]]:
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    limits = httpx.Limits(max_connections=READERS, max_keepalive_connections=READERS)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        until = time.monotonic() + seconds
        reads = await asyncio.gather(
            *(_reader(http, seed, until, statuses, problems) for seed in range(READERS))
        )
    return sum(reads), statuses, problems


def test_hundred_readers_see_consistent_monotonic_snapshots_while_versions_change(
    tmp_path: Path,
    db: psycopg.Connection[Any],
    simulator: Simulator,
    run_service: Callable[..., Service],
) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text(jobs_toml(simulator.url, ttl="2s", keys=KEYS))
    service = run_service(config)
    for key in KEYS:  # every key has a first version before the readers start
        httpx.get(f"{service.url}/api/v1/snapshots/pagerduty.schedule_users/{key}", timeout=30)
    before = db.execute("SELECT count(*) FROM snapshots").fetchone()

    with rotating(simulator, KEYS, every=0.1):
        reads, statuses, problems = asyncio.run(_read_for(service.url, SECONDS))

    after = db.execute("SELECT count(*) FROM snapshots").fetchone()
    print(f"{reads} reads in {SECONDS:g} s by {READERS} readers: {dict(statuses)}")
    assert problems == []
    assert set(statuses) <= {200, 304}, statuses
    assert statuses[304] > 0
    assert reads > READERS * 10  # every reader kept reading
    assert before is not None
    assert after is not None
    assert after[0] > before[0] + len(KEYS)  # versions changed under the readers
    assert service.terminate() == 0
