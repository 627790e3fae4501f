"""Read-path throughput: a hot snapshot read and a 304 against a no-op route on the same server.

Run: python bench/read_path.py [--seconds 10] [--connections 32]
Uses wrk when installed (apt-get install wrk); otherwise a Python load generator, which is
slower than the server and so understates the differences. Prints the ratios last.
Targets: hot read >= 70% of the no-op route's requests/s, a 304 >= 85%.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import re
import shutil
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

from snapshots.simulator import create_simulator_app
from snapshots.uvicorn_runner import start_in_thread

SNAPSHOT = "/api/v1/snapshots/pagerduty.schedule_users/PSCH004"


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


def run_wrk(name: str, url: str, seconds: int, connections: int, etag: str | None) -> Result:
    headers = ["-H", f"If-None-Match: {etag}"] if etag else []
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


def run_python(name: str, url: str, seconds: int, connections: int, etag: str | None) -> Result:
    async def load() -> list[float]:
        latencies: list[float] = []
        headers = {"If-None-Match": etag} if etag else {}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=3, help="scenarios interleaved; medians reported"
    )
    args = parser.parse_args()
    runner = run_wrk if shutil.which("wrk") else run_python
    simulator = start_in_thread(create_simulator_app())
    with tempfile.TemporaryDirectory() as tmp, database() as url:
        config = Path(tmp) / "jobs.toml"
        config.write_text(
            f'[api]\naccess_log = false\n[providers.pagerduty]\nbase_url = "{simulator.url}/pagerduty"\n'
            'token = "sim-pagerduty-token"\n[datasets."pagerduty.schedule_users"]\nkeys = ["PSCH004"]\n'
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = python(str(Path(__file__).parent / "_read_server.py"), str(config), url, str(port))
        with process(server, {}, f"{base}/healthz", Path(tmp) / "server.log"):
            etag = httpx.get(base + SNAPSHOT, timeout=30).headers["ETag"]
            httpx.get(base + SNAPSHOT)  # the hot-path cache now holds it
            scenarios = [
                ("no-op route", "/noop", None),
                ("hot snapshot read", SNAPSHOT, None),
                ("304 Not Modified", SNAPSHOT, etag),
            ]
            rounds = [
                [
                    runner(n, base + path, args.seconds, args.connections, tag)
                    for n, path, tag in scenarios
                ]
                for _ in range(args.rounds)
            ]
            results = [_median([r[i] for r in rounds]) for i in range(len(scenarios))]
    simulator.stop()
    print(
        f"read_path on {platform.machine()} {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}, "
        f"load by {'wrk' if runner is run_wrk else 'python httpx'}, {args.connections} connections, "
        f"median of {args.rounds} interleaved rounds of {args.seconds}s"
    )
    for r in results:
        print(
            f"  {r.name:<20} {r.requests_per_second:>9,.0f} req/s   p50 {r.p50_ms:6.2f} ms   p99 {r.p99_ms:6.2f} ms"
        )
    noop = results[0].requests_per_second
    print(f"hot read / no-op = {results[1].requests_per_second / noop:.2f} (target >= 0.70)")
    print(f"304 / no-op      = {results[2].requests_per_second / noop:.2f} (target >= 0.85)")


if __name__ == "__main__":
    main()
