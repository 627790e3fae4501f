"""Read-path throughput of the service against two baselines measured in the same run.

Baselines, each its own process on uvicorn with the service's settings: a bare Litestar app with
one no-op route and no middleware (the framework's cheapest route) and a raw ASGI app answering
fixed bytes (the limit). The service runs as `snapshots serve` would, with default settings
(access log on) and a reader token. Scenarios: hot snapshot read, 304, the seed-shaped bare
route (`/api/v1/pagerduty/schedules/{id}/users`), qontract-api's escalation-policy route (composed
from several snapshots), a mirror route, and a miss-then-hit
(a key never read before: one cold fetch, then hits). Rounds are interleaved; each round's
throughputs are divided by that round's baselines, and the medians of those ratios reported
(with the median throughputs, and each round's ratio). Rounds are many and short (10 of 3 s
each by default): a small shared machine's speed moves by 10-40% from one second to the next,
so a few long rounds compare a quiet spell of one scenario with a busy spell of its baseline,
where the median of many short rounds is not moved by a few busy spells.

Run: python bench/read_path.py [--seconds 3] [--connections 32] [--rounds 10]
Uses wrk when installed (apt-get install wrk); otherwise a Python load generator, which is
slower than the server and so understates the differences. Prints the ratios last.
Targets (issue 18): hot read and 304 at least 1.2x the bare Litestar no-op.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import database, free_port, process, python

from snapshots.api.auth import create_token
from snapshots.simulator import create_simulator_app
from snapshots.simulator.pagerduty_data import SCHEDULE_COUNT
from snapshots.uvicorn_runner import start_in_thread

SNAPSHOT = "/api/v1/snapshots/pagerduty.schedule_users/PSCH004"
FIRST_FRESH = 10


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if match is None:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return (
        float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[match.group(2)]
    )


def run_wrk(
    name: str, url: str, seconds: int, connections: int, etag: str | None, token: str
) -> Result:
    headers = ["-H", f"Authorization: Bearer {token}"]
    headers += ["-H", f"If-None-Match: {etag}"] if etag else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *headers, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"warning: {name}: {out.strip().splitlines()[-3:]}", file=sys.stderr)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    return Result(name, rps, p50, p99)


def run_python(
    name: str, url: str, seconds: int, connections: int, etag: str | None, token: str
) -> Result:
    async def load() -> list[float]:
        latencies: list[float] = []
        headers = {"Authorization": f"Bearer {token}"}
        if etag:
            headers["If-None-Match"] = etag
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(limits=limits, headers=headers) as http:

            async def worker() -> None:
                while time.monotonic() < deadline:
                    start = time.perf_counter()
                    await http.get(url)
                    latencies.append(time.perf_counter() - start)

            await asyncio.gather(*(worker() for _ in range(connections)))
        return latencies

    latencies = sorted(asyncio.run(load()))

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Result(name, len(latencies) / seconds, percentile(0.5), percentile(0.99))


def _median(results: list[Result]) -> Result:
    """The round with the median throughput (rounds are interleaved, so drift hits all alike)."""
    ordered = sorted(results, key=lambda r: r.requests_per_second)
    return ordered[len(ordered) // 2]


BASELINES = Path(__file__).parent / "_baselines.py"
COMPOSED = (
    "/api/v1/external/pagerduty/escalation-policies/PPOL002/users"
    "?secret_manager_url=vault&path=pagerduty"
)
MIRROR = "/mirror/pagerduty/users/PUSR003"
SEED = "/api/v1/pagerduty/schedules/PSCH004/users"  # the seed ADR's route shape: the data as body


def _config(simulator_url: str, tokens: Path, access_log: bool) -> str:
    datasets = ("schedule_users", "schedule_on_call", "user", "escalation_policy")
    tables = "\n".join(f'[datasets."pagerduty.{name}"]' for name in datasets)
    return (
        f'[api]\ntokens_file = "{tokens}"\naccess_log = {str(access_log).lower()}\n'
        f'[providers.pagerduty]\nbase_url = "{simulator_url}/pagerduty"\n'
        f'token = "sim-pagerduty-token"\nbudget = "100000/1s"\n{tables}\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="of each scenario in a round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=10, help="scenarios interleaved; medians reported"
    )
    parser.add_argument(
        "--no-access-log", action="store_true", help="the service without its access log"
    )
    args = parser.parse_args()
    runner = run_wrk if shutil.which("wrk") else run_python
    simulator = start_in_thread(create_simulator_app())
    # a schedule never read before for each round's miss-then-hit (PSCH010 on)
    schedules = {"schedules": max(SCHEDULE_COUNT, FIRST_FRESH + args.rounds)}
    httpx.put(f"{simulator.url}/_sim/size", json=schedules).raise_for_status()
    with tempfile.TemporaryDirectory() as tmp, database() as url, contextlib.ExitStack() as stack:
        tokens = Path(tmp) / "tokens"
        token = create_token(tokens, "bench", "reader")
        config = Path(tmp) / "jobs.toml"
        config.write_text(_config(simulator.url, tokens, not args.no_access_log))
        ports = {name: free_port() for name in ("service", "bare", "raw")}
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        # The service exactly as `snapshots serve` runs it: its logging, its uvicorn settings.
        snapshots = str(Path(sys.executable).parent / "snapshots")
        server = [snapshots, "serve", "--config", str(config), "--port", str(ports["service"])]
        environment = {"SNAPSHOTS_DATABASE_URL": url, "SNAPSHOTS_DATA_DIR": tmp}
        stack.enter_context(
            process(server, environment, f"{base['service']}/healthz", Path(tmp) / "service.log")
        )
        for kind in ("bare", "raw"):
            command = python(str(BASELINES), kind, str(ports[kind]))
            stack.enter_context(
                process(command, {}, f"{base[kind]}/noop", Path(tmp) / f"{kind}.log")
            )
        auth = {"Authorization": f"Bearer {token}"}
        for path in (SNAPSHOT, SEED, COMPOSED, MIRROR):  # warm: the hot-path cache holds them now
            httpx.get(base["service"] + path, headers=auth, timeout=30).raise_for_status()
        etag = httpx.get(base["service"] + SNAPSHOT, headers=auth).headers["ETag"]
        scenarios = [
            ("bare Litestar no-op", base["bare"] + "/noop", None),
            ("raw ASGI bytes", base["raw"] + "/noop", None),
            ("hot snapshot read", base["service"] + SNAPSHOT, None),
            ("304 Not Modified", base["service"] + SNAPSHOT, etag),
            ("seed-shaped route", base["service"] + SEED, None),
            ("qontract-api route", base["service"] + COMPOSED, None),
            ("mirror route", base["service"] + MIRROR, None),
            (
                "miss then hit",
                base["service"] + "/api/v1/snapshots/pagerduty.schedule_users/{key}",
                None,
            ),
        ]
        rounds = []
        for number in range(args.rounds):
            fresh = f"PSCH{FIRST_FRESH + number:03d}"  # never read before this round
            rounds.append(
                [
                    runner(n, u.format(key=fresh), args.seconds, args.connections, tag, token)
                    for n, u, tag in scenarios
                ]
            )
        results = [_median([r[i] for r in rounds]) for i in range(len(scenarios))]
        # Each round's scenarios against that round's baselines, then the median over rounds:
        # a slow spell of the machine weighs on a round's baseline and its scenarios alike.
        ratios = [
            (
                statistics.median(
                    r[i].requests_per_second / r[0].requests_per_second for r in rounds
                ),
                statistics.median(
                    r[i].requests_per_second / r[1].requests_per_second for r in rounds
                ),
            )
            for i in range(len(scenarios))
        ]
    simulator.stop()
    print(
        f"read_path on {platform.machine()} {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}, "
        f"load by {'wrk' if runner is run_wrk else 'python httpx'}, {args.connections} connections, "
        f"median of {args.rounds} interleaved rounds of {args.seconds}s, "
        f"access log {'off' if args.no_access_log else 'on'}"
    )
    for r in results:
        print(
            f"  {r.name:<20} {r.requests_per_second:>9,.0f} req/s   p50 {r.p50_ms:6.2f} ms   p99 {r.p99_ms:6.2f} ms"
        )
    print("ratios: each round against its own baselines, median over the rounds")
    for r, (to_bare, to_raw) in zip(results[2:], ratios[2:], strict=True):
        target = " (target >= 1.20)" if r.name in ("hot snapshot read", "304 Not Modified") else ""
        print(f"{r.name:<20} / bare Litestar = {to_bare:.2f}{target}   / raw ASGI = {to_raw:.2f}")
    print(
        "each round / bare Litestar: "
        + "; ".join(
            f"{name} "
            + " ".join(f"{r[i].requests_per_second / r[0].requests_per_second:.2f}" for r in rounds)
            for i, (name, _, _) in enumerate(scenarios)
            if i >= 2
        )
    )


if __name__ == "__main__":
    main()
