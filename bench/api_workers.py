"""Hot-read throughput of `snapshots api --workers 1` against `--workers 2` (issue 18).

Runs the simulator, one `snapshots worker` and the two API deployments (each its own
`snapshots api`, default settings: access log on, a reader token) on one database (embedded
PostgreSQL unless SNAPSHOTS_DATABASE_URL is set). Each API deployment has the snapshot in every
process's hot cache before it is measured (reads on new connections until every process has
answered, told apart by X-Request-Id). wrk then reads the hot snapshot; the two deployments are
measured in interleaved rounds (the idle one only waits on its sockets), medians reported,
with the CPU the API processes spent per request (from /proc: robust to other load) and how
the load split between the two processes (wrk's connections are long-lived, and the kernel
gives each to whichever process accepts first, so the split varies from round to round).

Run: python bench/api_workers.py [--seconds 10] [--connections 32] [--rounds 3]
The load generator, the simulator, the worker, PostgreSQL and the API processes share the
machine's cores, so on 2 cores a second process cannot double throughput: wrk needs a share.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import cpu_seconds, database, free_port, machine, process, python, simulator
from read_path import SNAPSHOT, Result, _median, run_python, run_wrk

from snapshots.api.auth import create_token

WORKERS = (1, 2)


def _cpu_by_process(pid: int) -> list[float]:
    """CPU seconds used by a supervisor and by each of its children (the API processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [cpu_seconds(pid), *(cpu_seconds(int(child)) for child in children)]


def _config(simulator_url: str, tokens: Path) -> str:
    return (
        f'[api]\ntokens_file = "{tokens}"\n'
        f'[providers.pagerduty]\nbase_url = "{simulator_url}/pagerduty"\n'
        f'token = "sim-pagerduty-token"\nbudget = "100000/1s"\n'
        '[datasets."pagerduty.schedule_users"]\n'
    )


def _warm(url: str, token: str, processes: int, timeout: float = 60.0) -> None:
    """Read the snapshot on new connections until each of `processes` answered it twice (the
    first read of a process fills its hot cache from the store)."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < processes or min(seen.values()) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}: only {len(seen)} of {processes} processes answered")
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        answer.raise_for_status()
        process_id = answer.headers["X-Request-Id"][:16]  # per-process prefix (middleware.py)
        seen[process_id] = seen.get(process_id, 0) + 1
    if len(seen) != processes:
        raise RuntimeError(f"{url}: {len(seen)} processes answered, expected {processes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=3, help="deployments interleaved; medians reported"
    )
    args = parser.parse_args()
    runner = run_wrk if shutil.which("wrk") else run_python
    with (
        tempfile.TemporaryDirectory() as tmp,
        database() as url,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        sim = stack.enter_context(simulator(work))
        tokens = work / "tokens"
        token = create_token(tokens, "bench", "reader")
        config = work / "jobs.toml"
        config.write_text(_config(sim.url, tokens))
        env = {"SNAPSHOTS_DATABASE_URL": url}
        common = ["--config", str(config), "--no-migrate"]
        worker_port = free_port()
        stack.enter_context(
            process(
                python("-m", "snapshots.cli", "worker", *common, "--port", str(worker_port)),
                env,
                f"http://127.0.0.1:{worker_port}/readyz",
                work / "worker.log",
            )
        )
        targets: dict[int, str] = {}
        pids: dict[int, int] = {}
        for workers in WORKERS:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            api = ["api", *common, "--port", str(port), "--workers", str(workers)]
            command = python("-m", "snapshots.cli", *api)
            api_process = stack.enter_context(
                process(command, env, f"{base}/readyz", work / f"api-{workers}.log")
            )
            pids[workers] = api_process.pid
            _warm(base + SNAPSHOT, token, workers)
            targets[workers] = base + SNAPSHOT
        rounds: list[list[Result]] = []
        cpu_per_request: dict[int, list[float]] = {n: [] for n in WORKERS}
        busiest: list[float] = []  # with 2 processes: the busier one's share of the API CPU
        for _ in range(args.rounds):
            results = []
            for n in WORKERS:
                before = _cpu_by_process(pids[n])
                result = runner(
                    f"--workers {n}", targets[n], args.seconds, args.connections, None, token
                )
                used = [a - b for a, b in zip(_cpu_by_process(pids[n]), before, strict=False)]
                cpu_per_request[n].append(sum(used) / (result.requests_per_second * args.seconds))
                if n > 1:
                    busiest.append(max(used) / sum(used))
                results.append(result)
            rounds.append(results)
        results = [_median([r[i] for r in rounds]) for i in range(len(WORKERS))]
    print(
        f"api_workers on {machine()}, load by {'wrk' if runner is run_wrk else 'python httpx'}, "
        f"{args.connections} connections, median of {args.rounds} interleaved rounds of "
        f"{args.seconds}s, hot snapshot read"
    )
    for n, r in zip(WORKERS, results, strict=True):
        cpu_ms = sorted(cpu_per_request[n])[len(cpu_per_request[n]) // 2] * 1000
        print(
            f"  {r.name:<12} {r.requests_per_second:>9,.0f} req/s   "
            f"p50 {r.p50_ms:6.2f} ms   p99 {r.p99_ms:6.2f} ms   "
            f"API CPU {cpu_ms:.3f} ms/request"
        )
    one, two = (r.requests_per_second for r in results)
    print(f"--workers 2 / --workers 1 = {two / one:.2f}")
    # wrk opens its connections at once and keeps them; the kernel queues them on the one
    # listening socket and whichever process wakes first may accept most of them.
    shares = ", ".join(f"{share:.0%}" for share in busiest)
    print(f"busiest of the 2 processes' share of their CPU, per round: {shares}")


if __name__ == "__main__":
    main()
