"""The `snapshots` command: serve, api, worker, migrate, simulate, demo and operator tools."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from rich.console import Console
from uvicorn.config import STARTUP_FAILURE

from snapshots import __version__
from snapshots.analyst_sql import SqlError
from snapshots.config import JobsConfig, Settings, load_jobs
from snapshots.database import embedded_postgres, migrate, redacted, sqlalchemy_url
from snapshots.db_url import NotRunning
from snapshots.errors import ConfigError
from snapshots.instance import MAX_INSTANCE_NAME, Role, instance_name
from snapshots.logs import configure_logging, get_logger
from snapshots.operator import OperatorError
from snapshots.registry import Registry
from snapshots.uvicorn_runner import ProcessesFailed, start_in_thread, supervise, uvicorn_config

log = get_logger("snapshots.cli")
EXIT_CONFIG = 2
MAX_WORKERS = 64
API_PROCESS_APP = "snapshots.cli:api_process_app"
"""What each process of `snapshots api --workers N` imports (uvicorn calls it in the process)."""


def _load_config(path: Path) -> JobsConfig:
    """Parse jobs.toml and resolve it against the built-in providers, so every mistake shows at start."""
    config = load_jobs(path)
    Registry.from_config(config)
    return config


@contextlib.contextmanager
def _database(settings: Settings, data_dir: Path | None = None) -> Iterator[str]:
    """SNAPSHOTS_DATABASE_URL when set, else an embedded PostgreSQL stopped on exit."""
    if settings.database_url:
        yield sqlalchemy_url(settings.database_url)
        return
    with embedded_postgres(data_dir or settings.data_dir, settings.embedded_tcp_port) as url:
        yield url


def _serve(
    config: JobsConfig,
    settings: Settings,
    host: str,
    port: int,
    migrate_first: bool,
    data_dir: Path | None = None,
    role: Role = "serve",
    workers: int = 1,
) -> None:
    from snapshots.api.app import create_app

    with _database(settings, data_dir) as url:
        log.info("database.selected", url=redacted(url))
        if migrate_first:
            migrate(url)
        log.info(
            "service.starting",
            role=role,
            instance=instance_name(),
            url=f"http://{host}:{port}",
            config=str(config.path),
            workers=workers,
        )
        if workers == 1:
            app = create_app(config, url, role=role, freeze_heap=True)
            uvicorn.Server(uvicorn_config(app, host, port)).run()
            return
        # uvicorn's supervisor binds the socket once and starts `workers` processes on it (and
        # replaces one that dies); each imports API_PROCESS_APP and builds its own app: its own
        # hot cache and LISTEN connection, so the change feed invalidates every process's cache.
        # They find the database and the jobs file in the environment they inherit; this
        # process keeps the embedded PostgreSQL (if any) running until they have stopped.
        assert role == "api", "only `snapshots api` runs several processes"
        os.environ["SNAPSHOTS_DATABASE_URL"] = url
        os.environ["SNAPSHOTS_CONFIG"] = str(config.path.resolve())
        os.environ[_API_PROCESSES] = str(workers)
        os.environ[_API_SUPERVISOR] = str(os.getpid())
        supervise(API_PROCESS_APP, workers, host, port)


def _check_exposure(config: JobsConfig, host: str) -> None:
    """Without tokens the API is open; allow that only on a loopback address, with a warning."""
    from snapshots.api.auth import TokenStore

    if not TokenStore.of(config).open:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigError(
            f"{config.path}: api.tokens_file: no API tokens, so binding {host} would open the API to "
            "anyone who can reach it; create one with `snapshots token create NAME --role operator` "
            "(and set [api] tokens_file), or bind 127.0.0.1"
        )
    log.warning(
        "api.open", reason="no API tokens configured; open to local callers only", host=host
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """`serve`, `api` and `worker`: the same process with different parts (args.role)."""
    settings = Settings.from_env()
    config = _load_config(args.config or settings.config_path)
    _check_exposure(config, args.host)
    _serve(
        config,
        settings,
        args.host,
        args.port,
        not args.no_migrate,
        role=args.role,
        workers=args.workers,
    )
    return 0


_API_PROCESSES = "SNAPSHOTS_API_PROCESSES"
"""Set by `snapshots api --workers N` for its processes: how many share the port."""
_API_SUPERVISOR = "SNAPSHOTS_API_SUPERVISOR"
"""...and the pid of the supervisor, which they must not outlive."""


def _stop_with_supervisor() -> None:
    """Have the kernel send this process SIGTERM when the supervisor dies, even by `kill -9`
    (Linux's PR_SET_PDEATHSIG), so no API process is left holding the port and the database;
    SIGTERM makes uvicorn stop it gracefully. Exit at once if the supervisor is already gone."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    supervisor = os.environ.get(_API_SUPERVISOR)
    if supervisor and os.getppid() != int(supervisor):
        raise SystemExit("snapshots api: the supervising process is gone")


def api_process_app() -> Any:
    """The app of one process of `snapshots api --workers N`, called by uvicorn in that process.

    Configuration comes from the environment the supervisor set (SNAPSHOTS_CONFIG and
    SNAPSHOTS_DATABASE_URL); the schema was migrated by the supervisor. Each process gets its
    own instance name (`SNAPSHOTS_INSTANCE` or the host, then its pid), which its logs and its
    `snapshots_instance_info` metric carry, so the processes behind one port can be told apart."""
    configure_logging()
    _stop_with_supervisor()
    try:
        return _api_process_app()
    except Exception as exc:
        # Uncaught, uvicorn would restart this process forever; exit status 3 tells the
        # supervisor that startup itself fails, and it stops (see uvicorn_runner.supervise).
        log.error("service.process_failed", error=f"{type(exc).__name__}: {exc}")
        sys.exit(STARTUP_FAILURE)


def _api_process_app() -> Any:
    from snapshots.api.app import create_app

    base = os.environ.get("SNAPSHOTS_INSTANCE")
    if base:
        # The base shortened so the pid survives instance_name's 64-character cut: with a long
        # pod name every process would otherwise carry the same name.
        suffix = f"-{os.getpid()}"
        os.environ["SNAPSHOTS_INSTANCE"] = f"{base[: MAX_INSTANCE_NAME - len(suffix)]}{suffix}"
    settings = Settings.from_env()
    assert settings.database_url is not None, "set by the supervising `snapshots api` process"
    config = load_jobs(settings.config_path)
    log.info(
        "service.process_starting",
        role="api",
        instance=instance_name(),
        processes=os.environ.get(_API_PROCESSES),
    )
    return create_app(config, sqlalchemy_url(settings.database_url), role="api", freeze_heap=True)


def _workers(value: str) -> int:
    """--workers: an integer from 1 to MAX_WORKERS."""
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if not 1 <= workers <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {MAX_WORKERS} (processes serving the API), got {workers}"
        )
    return workers


def _one_process(role: Role) -> Callable[[str], int]:
    """--workers of `serve` and `worker`: only 1, since they run a worker, and one worker
    process must hold the leader lock at a time (a second is a standby, started on its own)."""

    def check(value: str) -> int:
        workers = _workers(value)
        if workers > 1 and role == "worker":
            raise argparse.ArgumentTypeError(
                f"a worker is one process (one worker is active at a time); start further "
                f"`snapshots worker` processes as standbys, and `snapshots api --workers "
                f"{workers}` for several API processes"
            )
        if workers > 1:
            raise argparse.ArgumentTypeError(
                f"serve runs a worker too and cannot run {workers} processes; for several API "
                f"processes run `snapshots api --workers {workers}` plus one `snapshots worker`"
            )
        return workers

    return check


def cmd_plan(args: argparse.Namespace) -> int:
    from snapshots.planner import make_plan, render

    settings = Settings.from_env()
    config = _load_config(args.config or settings.config_path)
    registry = Registry.from_config(config)
    key_counts = {name: len(d.keys) for name, d in registry.datasets.items()}
    plans = make_plan(registry, config.refresh_ahead, key_counts, {}, include_disabled=True)
    if args.json:
        print(
            json.dumps({name: dataclasses.asdict(plan) for name, plan in plans.items()}, indent=2)
        )
    else:
        print(f"Budget plan for {config.path} (keys listed in the file; one request per refresh)")
        print(render(plans))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from snapshots.api.auth import create_token

    settings = Settings.from_env()
    config = _load_config(args.config or settings.config_path)
    if config.api.tokens_path is None:
        raise ConfigError(
            f'{config.path}: api.tokens_file: not set; add [api] tokens_file = "tokens" first'
        )
    token = create_token(config.api.tokens_path, args.name, args.role)
    print(
        f"created {args.role} token {args.name!r} (its hash is in {config.api.tokens_file}); shown only now:"
    )
    print(token)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from snapshots import operator

    with operator.connect(args.url) as api:
        operator.status(api, args.json, Console())
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from snapshots import operator

    with operator.connect(args.url) as api:
        operator.refresh(api, args.dataset, args.key, args.wait, Console())
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from snapshots import operator

    with operator.connect(args.url) as api:
        operator.history(api, args.dataset, args.key, args.diff, args.limit, Console())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    with _database(settings) as url:
        migrate(url, args.revision)
        print(f"database at {redacted(url)} is at revision {args.revision}")
    return 0


def _quiet_logging() -> None:
    """Analysts' commands log only warnings (not the embedded server's start and join) unless
    SNAPSHOTS_LOG_LEVEL asks for more; logs go to stderr either way."""
    if not os.environ.get("SNAPSHOTS_LOG_LEVEL"):
        configure_logging(level="WARNING")


def cmd_sql(args: argparse.Namespace) -> int:
    """Run QUERY, or an interactive session (psql, else a prompt), on the service's database:
    SNAPSHOTS_DATABASE_URL, or the embedded PostgreSQL, joined if running, else started and
    stopped again on exit."""
    from snapshots import analyst_sql, sql_psql
    from snapshots.sql_output import Format

    _quiet_logging()
    settings = Settings.from_env()
    if args.config:
        _load_config(args.config)  # the same checks as serve: a wrong path fails here
    fmt: Format = "csv" if args.csv else "json" if args.json else "table"
    with _database(settings) as url:
        if args.query is not None:
            analyst_sql.run_and_print(url, args.query, args.write, fmt)
            return 0
        psql = sql_psql.find_psql()
        if psql and fmt != "json":  # psql has no JSON output; the prompt has
            return sql_psql.run_psql(psql, url, args.write, csv=fmt == "csv")
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history for input()
        return analyst_sql.prompt_loop(url, args.write, fmt)


def cmd_db_url(args: argparse.Namespace) -> int:
    from snapshots.db_url import analyst_url

    _quiet_logging()
    settings = Settings.from_env()
    if args.config:
        _load_config(args.config)
    found = analyst_url(settings, args.show_password)
    print(found.url)
    if found.password_omitted:
        print(
            "snapshots: the password is left out; add --show-password to include it",
            file=sys.stderr,
        )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from snapshots.simulator import SimulatorState, create_simulator_app

    app = create_simulator_app(SimulatorState(latency_seconds=args.latency))
    print(f"simulator on http://{args.host}:{args.port} (counters at /_sim/counters)", flush=True)
    uvicorn.Server(uvicorn_config(app, args.host, args.port)).run()
    return 0


def _demo_sql(settings: Settings, demo_dir: Path) -> str:
    """The `snapshots sql` line of the demo's examples: its database is the one in `demo_dir`."""
    query = shlex.quote("SELECT dataset, key, version, age, stale FROM latest_snapshots")
    where = "" if settings.database_url else f"SNAPSHOTS_DATA_DIR={shlex.quote(str(demo_dir))} "
    return f"  {where}snapshots sql {query}   (SQL; `snapshots sql` alone opens psql)"


def cmd_demo(args: argparse.Namespace) -> int:
    from snapshots.simulator import create_simulator_app
    from snapshots.simulator.demo import DEMO_JOBS, demo_reads

    settings = Settings.from_env()
    simulator = start_in_thread(create_simulator_app(), port=args.simulator_port)
    demo_dir = settings.data_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    jobs = demo_dir / "jobs.toml"
    jobs.write_text(DEMO_JOBS.format(simulator=simulator.url))
    config = _load_config(jobs)
    _check_exposure(config, args.host)
    base = f"http://{args.host}:{args.port}"
    print(
        "\n".join(
            [
                f"simulator:  {simulator.url}  (request counters: {simulator.url}/_sim/counters)",
                f"config:     {jobs}",
                f"service:    {base}",
                "try:",
                *demo_reads(base, simulator.url),
                _demo_sql(settings, demo_dir),
            ]
        ),
        flush=True,
    )
    try:
        _serve(config, settings, args.host, args.port, migrate_first=True, data_dir=demo_dir)
    finally:
        simulator.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapshots",
        description="A gateway serving fresh, budgeted snapshots of external API data.",
    )
    parser.add_argument("--version", action="version", version=f"snapshots {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    roles: list[tuple[Role, str, int]] = [
        ("serve", "run the read API and a worker in one process (the default deployment)", 8000),
        ("api", "run the read API only; refreshes are asked of the active worker", 8000),
        (
            "worker",
            "run a worker: refreshes while it holds the leader lock, else stands by "
            "(HTTP: health, metrics, budgets)",
            8001,
        ),
    ]
    for role, help_text, default_port in roles:
        serve = commands.add_parser(role, help=help_text)
        serve.add_argument(
            "--config", type=Path, help="jobs file (default: $SNAPSHOTS_CONFIG or ./jobs.toml)"
        )
        serve.add_argument(
            "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
        )
        serve.add_argument(
            "--port", type=int, default=default_port, help=f"port to bind (default {default_port})"
        )
        serve.add_argument(
            "--no-migrate", action="store_true", help="do not upgrade the schema on start"
        )
        if role == "api":
            serve.add_argument(
                "--workers",
                type=_workers,
                default=1,
                metavar="N",
                help=f"processes serving the API on the one port, 1 to {MAX_WORKERS} "
                "(default 1); each has its own hot cache, kept current by the change feed",
            )
        else:
            serve.add_argument(
                "--workers",
                type=_one_process(role),
                default=1,
                metavar="1",
                help=f"only 1: {role} runs the worker, and one worker at a time is active; "
                "for more API processes run `snapshots api --workers N` plus "
                "`snapshots worker`",
            )
        serve.set_defaults(func=cmd_serve, role=role)

    plan = commands.add_parser(
        "plan", help="print requests per hour each provider needs vs its budget"
    )
    plan.add_argument(
        "--config", type=Path, help="jobs file (default: $SNAPSHOTS_CONFIG or ./jobs.toml)"
    )
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.set_defaults(func=cmd_plan)

    token = commands.add_parser("token", help="manage API tokens (token create NAME --role ROLE)")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser(
        "create", help="create a token, print it once, store its hash"
    )
    create.add_argument("name", help="who uses it (shown in logs), e.g. slack-usergroups")
    create.add_argument("--role", choices=("reader", "operator"), required=True)
    create.add_argument(
        "--config", type=Path, help="jobs file whose [api] tokens_file to append to"
    )
    create.set_defaults(func=cmd_token_create)

    url_help = "the service (default: $SNAPSHOTS_URL or http://127.0.0.1:8000); token from $SNAPSHOTS_TOKEN"
    status = commands.add_parser(
        "status", help="datasets, keys, freshness and budgets of a running service"
    )
    status.add_argument("--url", help=url_help)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    refresh = commands.add_parser(
        "refresh", help="force a refresh of a key, or of every key of a dataset"
    )
    refresh.add_argument("dataset")
    refresh.add_argument("key", nargs="?", help="omit to refresh every key (with a progress bar)")
    refresh.add_argument("--wait", type=float, help="wait up to this many seconds for the result")
    refresh.add_argument("--url", help=url_help)
    refresh.set_defaults(func=cmd_refresh)

    history = commands.add_parser(
        "history", help="versions of a key, with --diff what changed between them"
    )
    history.add_argument("dataset")
    history.add_argument("key")
    history.add_argument(
        "--diff", action="store_true", help="items added, removed and changed per version"
    )
    history.add_argument("--limit", type=int, default=20, help="versions to show (default 20)")
    history.add_argument("--url", help=url_help)
    history.set_defaults(func=cmd_history)

    sql = commands.add_parser(
        "sql",
        help="run SQL on the service's database (read-only unless --write); without QUERY, psql",
    )
    sql.add_argument("query", nargs="?", help="statements to run; omit for an interactive session")
    sql.add_argument(
        "--config",
        type=Path,
        help="jobs file to check first (the database comes from the environment)",
    )
    output = sql.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="CSV with a header line")
    output.add_argument("--json", action="store_true", help="a JSON array of row objects")
    sql.add_argument(
        "--write",
        action="store_true",
        help="allow statements that change data (maintenance); default: read-only",
    )
    sql.set_defaults(func=cmd_sql)

    db_url = commands.add_parser(
        "db-url", help="print a connection string for psql or a BI tool (password left out)"
    )
    db_url.add_argument(
        "--config",
        type=Path,
        help="jobs file to check first (the database comes from the environment)",
    )
    db_url.add_argument(
        "--show-password", action="store_true", help="include the password in the URL"
    )
    db_url.set_defaults(func=cmd_db_url)

    mig = commands.add_parser(
        "migrate", help="upgrade the database schema (default: to the newest revision)"
    )
    mig.add_argument(
        "--revision", default="head", help="alembic revision to upgrade to (default head)"
    )
    mig.set_defaults(func=cmd_migrate)

    sim = commands.add_parser(
        "simulate", help="run the fake upstream APIs (PagerDuty, GitHub, Jira) on one port"
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8001, help="port to bind (default 8001)")
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    sim.set_defaults(func=cmd_simulate)

    demo = commands.add_parser(
        "demo", help="start the simulator and serve a demo config against it"
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="service port (default 8000)")
    demo.add_argument(
        "--simulator-port", type=int, default=8001, help="simulator port (default 8001)"
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it to the previous handler.
    # Turning it into SystemExit(0) here lets `finally` blocks run (stopping the embedded
    # PostgreSQL) and gives supervisors a clean exit status.
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"snapshots: configuration error: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    except OperatorError as exc:
        print(f"snapshots: {exc}", file=sys.stderr)
        return 1
    except (SqlError, NotRunning, ProcessesFailed) as exc:
        print(f"snapshots {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
