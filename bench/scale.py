"""10,000 registered keys: idle scheduler CPU, peak memory, and unchanged snapshot writes per second.

Run: python bench/scale.py [--keys 10000] [--latency 0.005] [--concurrency 16] [--idle 60]
The gateway (`snapshots serve`) registers `keys` PagerDuty schedules from jobs.toml with a
1 h TTL and a budget far above the load (100000/1s), so neither limits the figures; the
simulator, in its own process, answers after `latency` seconds. Phases:
1. initial fill: every key fetched once (new versions), writes per second from refresh_runs;
2. idle-fresh: no key due; the gateway's CPU seconds per wall second over `idle` seconds;
3. verification burst: a forced refresh of the whole dataset (same content: `unchanged`),
   runs finished per second from refresh_runs;
4. where the time goes: CPU per refresh of its parts, timed one at a time in this process
   (the provider fetch, the forced refresh's check, the run id and the stored write).
Peak RSS is the gateway's VmHWM at the end. Provider `concurrency` (fetch threads per
priority) caps fetches in flight: at most concurrency / latency fetches per second.
Targets: peak RSS < 300 MB, unchanged writes >= 500/s. Prints the verdict last.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import (
    cpu_seconds,
    database,
    gateway,
    log_events,
    machine,
    memory_mib,
    provider_toml,
    query,
    simulator,
)

from snapshots.clock import utcnow
from snapshots.config import load_jobs
from snapshots.providers.kind import FetchContext
from snapshots.registry import Registry
from snapshots.store import FetchedPayload, RunTiming, Store, create_engine
from snapshots.upstreams import Upstreams

DATASET = "pagerduty.schedule_users"


@dataclass(frozen=True)
class Burst:
    """Refresh runs of one trigger: how many, their outcomes, and the span they took."""

    runs: int
    outcomes: dict[str, int]
    first_started: datetime
    last_finished: datetime
    wall_seconds: float

    @property
    def per_second(self) -> float:
        """Runs per second over the span from the first start to the last finish."""
        span = (self.last_finished - self.first_started).total_seconds()
        return self.runs / span if span > 0 else 0.0


def wait_for_runs(url: str, trigger: str, count: int, timeout: float) -> Burst:
    """Wait until `count` runs of `trigger` are stored, then summarise them."""
    began = time.monotonic()
    while True:
        done = int(
            query(url, "SELECT count(*) FROM refresh_runs WHERE trigger = %s", trigger)[0][0]
        )
        if done >= count:
            break
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"only {done} of {count} {trigger} runs after {timeout:g}s")
        time.sleep(0.2)
    wall = time.monotonic() - began
    first, last = query(
        url,
        "SELECT min(started_at), max(finished_at) FROM refresh_runs WHERE trigger = %s",
        trigger,
    )[0]
    outcomes = query(
        url, "SELECT outcome, count(*) FROM refresh_runs WHERE trigger = %s GROUP BY 1", trigger
    )
    return Burst(done, {o: int(n) for o, n in outcomes}, first, last, wall)


def breakdown(config: Path, url: str, samples: int) -> dict[str, float]:
    """CPU milliseconds per refresh of each part, run `samples` times on keys already stored."""
    registry = Registry.from_config(load_jobs(config))
    upstreams = Upstreams(registry)
    dataset = registry.datasets[DATASET]
    client = upstreams.client("pagerduty")
    ctx = FetchContext(utcnow(), dataset.ttl_seconds, dataset.options)
    keys = [f"PSCH{n:03d}" for n in range(1, samples + 1)]
    began = time.thread_time()
    fetched = [FetchedPayload.of(dataset.definition.fetch(client, k, ctx)) for k in keys]
    parts = {"fetch (provider client, on a fetch thread)": time.thread_time() - began}

    async def store() -> None:
        store = Store(create_engine(url))
        began = time.thread_time()
        for key in keys:
            await store.latest(DATASET, key)
        parts["forced refresh's check (latest)"] = time.thread_time() - began
        began = time.thread_time()
        run_ids = [await store.allocate_run_id() for _ in keys]
        parts["run id (nextval)"] = time.thread_time() - began
        began = time.thread_time()
        for key, payload, run_id in zip(keys, fetched, run_ids, strict=True):
            now = utcnow()
            timing = RunTiming("demand", now, now, 1, run_id)
            await store.record_success(
                DATASET, key, payload, timing, now + timedelta(hours=1), "config"
            )
        parts["stored write (record_success, unchanged)"] = time.thread_time() - began
        await store.engine.dispose()

    asyncio.run(store())
    upstreams.close()
    return {name: seconds * 1000 / samples for name, seconds in parts.items()}


def jobs_toml(sim_toml: str, keys: int) -> str:
    listed = ", ".join(f'"PSCH{n:03d}"' for n in range(1, keys + 1))
    return (
        "[api]\naccess_log = false\n"
        + sim_toml
        + f'[datasets."{DATASET}"]\nttl = "1h"\nmin_refresh_interval = "1s"\nkeys = [{listed}]\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000, help="PagerDuty schedules registered")
    parser.add_argument("--latency", type=float, default=0.005, help="simulator answer delay (s)")
    parser.add_argument("--concurrency", type=int, default=16, help="provider fetch threads")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measured")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="snapshots-bench-") as tmp,
        database() as url,
        simulator(Path(tmp)) as sim,
    ):
        sim.size(schedules=max(args.keys, 20))
        sim.latency(args.latency)
        pagerduty = provider_toml(
            "pagerduty", sim, budget="100000/1s", concurrency=args.concurrency
        )
        with gateway(jobs_toml(pagerduty, args.keys), url, Path(tmp)) as gw:
            fill = wait_for_runs(url, "schedule", args.keys, timeout=1800)
            rss_after_fill = memory_mib(gw.pid, "VmRSS")
            time.sleep(5)  # let the last writes and log lines settle
            runs_before = query(url, "SELECT count(*) FROM refresh_runs")[0][0]
            cpu0, wall0 = cpu_seconds(gw.pid), time.monotonic()
            time.sleep(args.idle)
            idle_cpu = (cpu_seconds(gw.pid) - cpu0) / (time.monotonic() - wall0)
            idle_runs = query(url, "SELECT count(*) FROM refresh_runs")[0][0] - runs_before
            cpu0, wall0 = cpu_seconds(gw.pid), time.monotonic()
            answer = httpx.post(f"{gw.url}/api/v1/datasets/{DATASET}/refresh", timeout=1800)
            answer.raise_for_status()
            post_seconds = time.monotonic() - wall0
            started = sum(1 for k in answer.json()["keys"] if k["status"] != "skipped")
            burst = wait_for_runs(url, "demand", started, timeout=1800)
            post_and_wait = time.monotonic() - wall0
            burst_cpu = (cpu_seconds(gw.pid) - cpu0) / post_and_wait
            peak = memory_mib(gw.pid, "VmHWM")
            failed = log_events(gw.log, "scheduler.refresh_failed")
            upstream = sim.requests("pagerduty")
        parts = breakdown(gw.log.with_suffix(".toml"), url, min(args.keys, 500))

    print(
        f"scale on {machine()}: {args.keys:,} keys of {DATASET}, simulator latency "
        f"{args.latency * 1000:g} ms, concurrency {args.concurrency}, budget 100000/1s"
    )
    fill_seconds = (fill.last_finished - fill.first_started).total_seconds()
    print(
        f"  initial fill          {fill.runs:>7,} runs {fill.outcomes} in {fill_seconds:,.0f}s"
        f" = {fill.per_second:,.0f}/s; {failed:,} refreshes failed before storing (retried"
        f" after 30s); RSS after fill {rss_after_fill:,.0f} MiB"
    )
    print(
        f"  idle-fresh CPU        {idle_cpu:.4f} CPU s per wall s over {args.idle:g}s"
        f" ({idle_runs} refreshes in that window)"
    )
    print(
        f"  verification burst    {burst.runs:>7,} runs {burst.outcomes} = {burst.per_second:,.0f}/s"
        f" (POST answered after {post_seconds:.1f}s; gateway {burst_cpu:.2f} CPU s per wall s;"
        f" {started:,} of {args.keys:,} started)"
    )
    print(f"  upstream requests     {upstream:,}; gateway peak RSS (VmHWM) {peak:,.0f} MiB")
    print(f"  CPU per refresh by part, timed alone in this process ({min(args.keys, 500)} each):")
    for name, ms in parts.items():
        print(f"    {name:<44} {ms:6.2f} ms")
    print(
        f"    {'gateway CPU per refresh in the burst':<44} "
        f"{burst_cpu * post_and_wait / burst.runs * 1000:6.2f} ms"
    )
    unchanged = burst.outcomes.get("unchanged", 0) == burst.runs
    met = burst.per_second >= 500 and peak < 300 and unchanged
    print(
        f"unchanged writes {burst.per_second:,.0f}/s (target >= 500/s"
        f"{'' if unchanged else '; NOT all unchanged'}), peak RSS {peak:,.0f} MiB (target < 300),"
        f" idle CPU {idle_cpu:.4f} s/s: {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
