"""Demand at 5x a provider's budget: no limit tripped, the budget used, the keys shared fairly.

Run: python bench/budget_pressure.py [--seconds 600] [--keys 600] [--budget 2] [--ttl 60]
600 keys of jira.project_issues with a 60 s TTL want 10 requests/s; the Jira budget and the
simulator's enforced limit are both 2 requests/s. One round over every key takes at least
keys / budget = 300 s, and the planner stretches intervals to ~330 s, so the default of 600 s
covers the initial backlog and the first re-refreshes, where an idle budget would show.
Prints simulator-counted violations (target 0), budget utilisation = upstream requests /
(budget x elapsed) (target >= 90%), the gateway's plan, and the fraction of keys whose snapshot
is within 2x TTL, sampled over time (a budget this short cannot keep them all that fresh:
at best budget x 2 x TTL / keys of them). Prints the verdict last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import database, gateway, machine, provider_toml, query, simulator

DATASET = "jira.project_issues"


@dataclass(frozen=True)
class Sample:
    """One reading: seconds since the gateway was ready, upstream requests so far, freshness."""

    elapsed: float
    upstream: int
    violations: int
    with_snapshot: int
    within_2ttl: int


def freshness(url: str, ttl: float) -> tuple[int, int]:
    """(keys with a snapshot, keys whose snapshot was verified within 2 x TTL)."""
    rows = query(
        url,
        "SELECT count(s.id), count(*) FILTER (WHERE s.verified_at > now() - make_interval("
        "secs => %s)) FROM dataset_keys k LEFT JOIN snapshots s ON s.id = k.latest_snapshot_id "
        "WHERE k.dataset = %s",
        2 * ttl,
        DATASET,
    )
    return int(rows[0][0]), int(rows[0][1])


def jobs_toml(sim_toml: str, keys: int, ttl: float) -> str:
    listed = ", ".join(f'"PRJ{n}"' for n in range(1, keys + 1))
    return (
        '[api]\naccess_log = false\n[service]\nmaintenance_interval = "30s"\n'
        + sim_toml
        + f'[datasets."{DATASET}"]\nttl = "{ttl:g}s"\nkeys = [{listed}]\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to run")
    parser.add_argument("--keys", type=int, default=600, help="Jira projects PRJ1..")
    parser.add_argument("--budget", type=int, default=2, help="Jira requests per second")
    parser.add_argument("--ttl", type=float, default=60.0, help="TTL in seconds")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    args = parser.parse_args()
    samples: list[Sample] = []
    with (
        tempfile.TemporaryDirectory(prefix="snapshots-bench-") as tmp,
        database() as url,
        simulator(Path(tmp)) as sim,
    ):
        sim.size(projects=max(args.keys, 50))
        sim.limit("jira", args.budget, 1.0)
        jira = provider_toml("jira", sim, budget=f"{args.budget}/1s", deployment="server")
        with gateway(jobs_toml(jira, args.keys, args.ttl), url, Path(tmp)) as gw:
            start = time.monotonic()
            base = sim.counters("jira")
            while True:
                elapsed = time.monotonic() - start
                counters = sim.counters("jira")
                samples.append(
                    Sample(
                        elapsed,
                        counters["requests"] - base["requests"],
                        counters["violations"] - base["violations"],
                        *freshness(url, args.ttl),
                    )
                )
                if elapsed >= args.seconds:
                    break
                time.sleep(min(args.sample, args.seconds - elapsed))
            providers = httpx.get(f"{gw.url}/api/v1/providers", timeout=30).json()
            plan: dict[str, Any] = next(p for p in providers if p["provider"] == "jira")

    print(
        f"budget_pressure on {machine()}: {args.keys} keys of {DATASET}, TTL {args.ttl:g}s, "
        f"budget {args.budget}/1s (simulator enforces the same), {args.seconds:g}s"
    )
    p = plan["plan"]
    print(
        f"gateway plan: demand {p['demand_per_hour']:,.0f}/h of budget {p['budget_per_hour']:,.0f}/h"
        f" ({p['utilisation']:.0%}), stretch x{p['stretch']:.2f}, shortfall "
        f"{p['shortfall_per_hour']:,.0f}/h; requests per refresh "
        f"{p['datasets'][0]['requests_per_refresh']:.2f}"
    )
    budget = plan["budget"]
    print(
        f"gateway budget at the end: {budget['granted']:,} tokens granted, "
        f"waiting {budget['waiting']}, paused {budget['paused_for_seconds']:g}s"
    )
    print(
        f"  {'t (s)':>6} {'upstream':>9} {'util. (interval)':>17} {'snapshots':>10} {'<= 2xTTL':>9}"
    )
    previous: Sample | None = None
    for s in samples:
        span = s.elapsed - previous.elapsed if previous else 0.0
        rate = (s.upstream - previous.upstream) / (args.budget * span) if previous and span else 0.0
        print(
            f"  {s.elapsed:>6.0f} {s.upstream:>9,} {rate:>17.0%} {s.with_snapshot:>10,} "
            f"{s.within_2ttl / args.keys:>9.0%}"
        )
        previous = s
    last = samples[-1]
    utilisation = last.upstream / (args.budget * last.elapsed)
    fresh = [s.within_2ttl / args.keys for s in samples if s.elapsed >= 2 * args.ttl]
    print(
        f"upstream requests {last.upstream:,} in {last.elapsed:.0f}s; keys within 2x TTL at the "
        f"end {last.within_2ttl / args.keys:.0%}"
        + (f", mean after 2x TTL {sum(fresh) / len(fresh):.0%}" if fresh else "")
        + f" (at best {min(1.0, args.budget * 2 * args.ttl / args.keys):.0%})"
    )
    print(
        f"violations {last.violations} (target 0), budget utilisation {utilisation:.1%} "
        f"(target >= 90%): {'met' if last.violations == 0 and utilisation >= 0.9 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
