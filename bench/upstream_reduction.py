"""Upstream requests saved by adopting the gateway: C consumers polling S PagerDuty schedules.

Run: python bench/upstream_reduction.py [--consumers 10,20] [--schedules 20] [--period 5]
     [--seconds 60] [--ttl 30]
Each consumer reads every schedule every `period` seconds for `seconds`, first straight from
the simulator's PagerDuty API (the baseline: what integrations do today), then through the
gateway with the project's AsyncSnapshotsClient. The simulator counts the upstream requests.
Target: through the gateway, upstream requests <= keys x (ceil(seconds/ttl) + 1), whatever C;
at C=10 at least 95% fewer than direct, and the gap grows with C. Prints the verdict last.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Simulator, database, gateway, machine, provider_toml, simulator, truncate

from snapshots_client import AsyncSnapshotsClient

DATASET = "pagerduty.schedule_users"
REFRESH_AHEAD = 0.8  # the service default: keys are refreshed at 72-80% of their TTL


@dataclass(frozen=True)
class Phase:
    """One phase: upstream requests the simulator counted, and what the consumers saw."""

    upstream: int
    reads: int
    errors: Counter[str]
    p50_ms: float
    p99_ms: float


Read = Callable[[str], Awaitable[object]]


async def poll(
    readers: list[Read], schedules: list[str], period: float, seconds: float
) -> tuple[list[float], Counter[str]]:
    """Every reader reads every schedule each `period`, staggered across the period, for `seconds`."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    start = time.monotonic()

    async def read(reader: Read, schedule: str) -> None:
        began = time.perf_counter()
        try:
            await reader(schedule)
        except Exception as exc:
            errors[type(exc).__name__] += 1
        latencies.append(time.perf_counter() - began)

    async def consumer(index: int, reader: Read) -> None:
        offset = period * index / len(readers)
        tick = 0
        while (due := offset + tick * period) < seconds:
            await asyncio.sleep(max(0.0, start + due - time.monotonic()))
            await asyncio.gather(*(read(reader, s) for s in schedules))
            tick += 1

    await asyncio.gather(*(consumer(i, r) for i, r in enumerate(readers)))
    return latencies, errors


def _phase(sim: Simulator, latencies: list[float], errors: Counter[str]) -> Phase:
    ordered = sorted(latencies) or [0.0]

    def ms(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return Phase(sim.requests("pagerduty"), len(latencies), errors, ms(0.5), ms(0.99))


async def direct(
    sim: Simulator, consumers: int, schedules: list[str], period: float, seconds: float
) -> Phase:
    """The baseline: each consumer calls the PagerDuty API itself, with its own token."""
    headers = {"Authorization": "Token token=sim-pagerduty-token"}
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends, or a poll every 5 s
    # races the server closing the connection it reuses.
    limits = httpx.Limits(keepalive_expiry=2.0)
    clients = [
        httpx.AsyncClient(
            base_url=f"{sim.url}/pagerduty", headers=headers, timeout=30, limits=limits
        )
        for _ in range(consumers)
    ]

    def reader(client: httpx.AsyncClient) -> Read:
        async def read(schedule: str) -> object:
            response = await client.get(f"/schedules/{schedule}/users")
            response.raise_for_status()
            return response.json()["users"]

        return read

    sim.reset()
    latencies, errors = await poll([reader(c) for c in clients], schedules, period, seconds)
    phase = _phase(sim, latencies, errors)
    for client in clients:
        await client.aclose()
    return phase


async def through_gateway(
    url: str, sim: Simulator, consumers: int, schedules: list[str], period: float, seconds: float
) -> Phase:
    """Each consumer reads through the gateway with its own AsyncSnapshotsClient (ETags, 304s)."""
    clients = [AsyncSnapshotsClient(url, timeout=30) for _ in range(consumers)]
    sim.reset()
    readers: list[Read] = [c.pagerduty_schedule_users for c in clients]
    latencies, errors = await poll(readers, schedules, period, seconds)
    phase = _phase(sim, latencies, errors)
    for client in clients:
        await client.aclose()
    return phase


def jobs_toml(sim: Simulator, ttl: float) -> str:
    """No keys listed: the consumers' first reads register them (cold misses), as on adoption."""
    return (
        "[api]\naccess_log = false\n"
        + provider_toml("pagerduty", sim)
        + f'[datasets."{DATASET}"]\nttl = "{ttl:g}s"\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--consumers", default="10", help="comma-separated consumer counts (default 10)"
    )
    parser.add_argument("--schedules", type=int, default=20, help="PSCH001.. (default 20)")
    parser.add_argument("--period", type=float, default=5.0, help="seconds between polls")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--ttl", type=float, default=30.0, help="the dataset's TTL in seconds")
    args = parser.parse_args()
    counts = [int(c) for c in args.consumers.split(",")]
    schedules = [f"PSCH{n:03d}" for n in range(1, args.schedules + 1)]
    bound = args.schedules * (math.ceil(args.seconds / args.ttl) + 1)
    # With refresh-ahead, a key is fetched at most this often in the window (first fetch at 0).
    ahead = args.schedules * (1 + math.floor(args.seconds / (args.ttl * REFRESH_AHEAD * 0.9)))
    rows: list[tuple[int, Phase, Phase]] = []
    with (
        tempfile.TemporaryDirectory(prefix="snapshots-bench-") as tmp,
        database() as url,
        simulator(Path(tmp)) as sim,
    ):
        sim.size(schedules=max(args.schedules, 20))
        for consumers in counts:
            was = asyncio.run(direct(sim, consumers, schedules, args.period, args.seconds))
            truncate(url)  # a fresh gateway: no keys, so the first fetches are counted too
            with gateway(jobs_toml(sim, args.ttl), url, Path(tmp), f"gateway-{consumers}") as gw:
                now = asyncio.run(
                    through_gateway(gw.url, sim, consumers, schedules, args.period, args.seconds)
                )
            rows.append((consumers, was, now))

    print(
        f"upstream_reduction on {machine()}: {args.schedules} schedules polled every "
        f"{args.period:g}s for {args.seconds:g}s per phase, gateway TTL {args.ttl:g}s"
    )
    print(
        f"gateway bound: keys x (ceil(D/TTL) + 1) = {bound} upstream requests"
        + (f" (refresh-ahead allows up to {ahead})" if ahead > bound else "")
    )
    print(
        f"  {'C':>4} {'direct':>8} {'gateway':>8} {'reduction':>10} {'bound ok':>9}"
        f"   {'direct p50/p99 ms':>18} {'gateway p50/p99 ms':>19} {'errors':>7}"
    )
    for consumers, was, now in rows:
        print(
            f"  {consumers:>4} {was.upstream:>8,} {now.upstream:>8,} "
            f"{1 - now.upstream / was.upstream:>10.1%} {'yes' if now.upstream <= bound else 'NO':>9}"
            f"   {was.p50_ms:>8.1f} /{was.p99_ms:>7.1f} {now.p50_ms:>9.1f} /{now.p99_ms:>7.1f}"
            f" {sum((was.errors + now.errors).values()):>7}"
        )
        for name, phase in (("direct", was), ("gateway", now)):
            if phase.errors:
                print(f"        {name} errors at C={consumers}: {dict(phase.errors)}")
    within = all(now.upstream <= bound for _, _, now in rows)
    gaps = [was.upstream - now.upstream for _, was, now in sorted(rows, key=lambda r: r[0])]
    grows = all(b > a for a, b in itertools.pairwise(gaps))
    first, was, now = rows[0]
    print(
        f"reduction at C={first}: {1 - now.upstream / was.upstream:.1%} fewer upstream requests "
        f"(target >= 95% at C=10); gateway within bound at every C: {'yes' if within else 'NO'}"
        + (f"; gap grows with C: {'yes' if grows else 'NO'}" if len(rows) > 1 else "")
    )


if __name__ == "__main__":
    main()
